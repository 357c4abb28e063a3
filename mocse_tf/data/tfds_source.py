"""CIFAR-10 / CIFAR-100 through TensorFlow Datasets: prepared data loads offline, missing data downloads only when
the download host answers; otherwise one clear error says how to supply the data (no 200 s of DNS retries)."""

import os
import threading
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from mocse_tf.data.cifar_local import CIFAR10_CLASS_NAMES
from mocse_tf.errors import UsageError, describe_error

# The folder the tfds cifar10 / cifar100 builders download their archives from. Module attributes, read at call
# time, so that a test (or a user behind a mirror) can point the probe elsewhere; MOCSE_TF_PROBE_URL does the
# same for a whole process (the command-line tests use it to simulate an offline machine).
PROBE_URL = os.environ.get("MOCSE_TF_PROBE_URL", "https://www.cs.toronto.edu/~kriz/")
PROBE_TIMEOUT_S = 3.0

_READ_BATCH = 10_000  # examples per read: one tensor per split would need the split size up front


def network_reachable():
    """True when PROBE_URL answers an HTTP(S) HEAD request, with any status, within PROBE_TIMEOUT_S seconds.

    A whole request rather than a TCP connect: sandboxes and proxies may accept connections to any address and
    still let no download through.
    """
    url, timeout_s = PROBE_URL, PROBE_TIMEOUT_S
    answered = []

    def probe():
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s).close()
            answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)  # an error status is still an answer from the host
        except (OSError, ValueError):
            pass

    # A thread, because the DNS lookup inside urlopen ignores the timeout and can hang far longer.
    thread = threading.Thread(target=probe, name="mocse-network-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(answered)


def load(name, split, data_dir=None):
    """Returns (images uint8 [N, 32, 32, 3], labels int64 [N], class_names) of tfds data set `name`."""
    import tensorflow_datasets as tfds  # imported here: it takes seconds and only these data sets need it

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        if not network_reachable():
            raise UsageError(_not_prepared_message(name, builder.data_dir))
        try:
            builder.download_and_prepare()
        except Exception as err:  # noqa: BLE001 - any failure here is a download problem the user must fix
            raise UsageError(f"downloading {name} into {builder.data_dir} failed ({describe_error(err)}); "
                             + _how_to_supply(name)) from err
    images, labels = [], []
    for batch_images, batch_labels in tfds.as_numpy(
        builder.as_dataset(split=split, as_supervised=True).batch(_READ_BATCH)
    ):
        images.append(batch_images)
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels).astype(np.int64), _class_names(name, builder)


def _class_names(name, builder):
    names = tuple(builder.info.features["label"].names)
    if name == "cifar10" and all(label.isdigit() for label in names):
        # Label names come from the downloaded files; metadata without them has only the numbers.
        return CIFAR10_CLASS_NAMES
    return names


def _not_prepared_message(name, prepared_dir):
    return (
        f"{name} is not prepared in {prepared_dir} and {urllib.parse.urlsplit(PROBE_URL).hostname} cannot be "
        "reached to download it; "
        + _how_to_supply(name)
    )


def _how_to_supply(name):
    offline = "`dataset`=cifar10_local `local_dir`=PATH (a cifar-10-batches-py folder) or " if name == "cifar10" else ""
    return (
        f"run once with network access (tfds downloads and prepares {name}), pass `data_dir`=DIR of a tfds data "
        f"folder where {name} is prepared, or train offline with {offline}`dataset`=synthetic"
    )
