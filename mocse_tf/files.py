"""Writing outputs atomically (JSON, CSV, text, PNG, .npy, .keras files and SavedModel folders), and reading JSON.

Every file or folder is written under a temporary name beside its final path and renamed over it when complete, so
an interruption never leaves half a file and an existing file is replaced only by a complete one. Temporary names
end in `.tmp-<pid>` (plus the format's extension where the writer needs one); mocse_tf.ownership removes those of
processes that no longer run. A write that fails raises UsageError naming the path.
"""

import contextlib
import csv
import json
import os
import shutil

import numpy as np

from mocse_tf.errors import UsageError


def remove(path):
    """Deletes the file, link or folder tree at `path`, if any."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@contextlib.contextmanager
def replacing(path, extension="", temporary=None):
    """`with replacing(path) as tmp:` writes the file or folder `tmp` (default `<path>.tmp-<pid><extension>`),
    then renames it to `path` (a folder only where `path` does not exist). A failed write leaves no temporary."""
    tmp = temporary or f"{path}.tmp-{os.getpid()}{extension}"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        remove(tmp)
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        remove(tmp)
        raise UsageError(f"cannot write {path}: {err.strerror or err}; choose a writable folder with free space") \
            from None
    except BaseException:
        remove(tmp)
        raise


def write_text(path, text):
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def write_json(path, payload, sort_keys=True, allow_nan=True):
    return write_text(path, json.dumps(payload, indent=2, sort_keys=sort_keys, allow_nan=allow_nan) + "\n")


def read_json(path, default=None):
    """The JSON document at `path`, or `default` when there is no such file."""
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_csv(path, fieldnames, rows):
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return path


def save_figure(figure, path):
    """A Matplotlib figure as PNG (110 dpi, trimmed to its content); the figure is closed, written or not."""
    import matplotlib.pyplot as plt

    try:
        with replacing(path, ".png") as tmp:
            figure.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


def write_npy(path, array, temporary=None):
    with replacing(path, temporary=temporary) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)
    return path


def save_keras(network, path):
    """A Keras network as a `.keras` file."""
    with replacing(path, ".keras") as tmp:
        network.save(tmp)
    return path
