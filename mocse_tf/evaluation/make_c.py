"""Writes a corrupted test set in the released CIFAR-10-C layout, one corruption at a time and resumably.

Layout: `<generator name>.npy` (uint8 [5 N, 32, 32, 3], severities 1..5 stacked), `labels.npy` (the N labels
repeated 5 times; uint8 like the release when they fit), and `make_c.json` (how the set was made). Each array
is written under `<name>.npy.partial` and renamed when complete, so a rerun skips finished corruptions and
redoes an interrupted one. The images are those that the `generate` source evaluates with the same seed.
"""

import os
import time

import numpy as np
from absl import logging

import mocse_tf
from mocse_tf import files
from mocse_tf.errors import UsageError
from mocse_tf.evaluation import sources
from mocse_tf.progress import Progress

PARTIAL_SUFFIX = ".partial"
# Manifest fields that decide which images are written: a resumed run must agree on all of them.
IDENTITY_FIELDS = ("dataset", "local_dir", "num_examples", "seed", "seed_chunk", "num_classes")


def labels_dtype(num_classes):
    return np.uint8 if num_classes <= 256 else np.int64


def _check_or_start_manifest(output_dir, manifest):
    existing = sources.read_manifest(output_dir)
    if existing is None:
        stray = sorted(n for n in os.listdir(output_dir) if n.endswith(".npy"))
        if stray:
            raise UsageError(f"`output_dir` {output_dir} already holds {', '.join(stray[:3])}"
                             f"{' ...' if len(stray) > 3 else ''} but no {sources.MANIFEST_FILE}: it was not written "
                             f"by bin/make_c; choose an empty or new `output_dir`")
        return dict(manifest, complete=[])
    differences = [f"{field}: folder {existing.get(field)!r}, now {manifest.get(field)!r}"
                   for field in IDENTITY_FIELDS if existing.get(field) != manifest.get(field)]
    if differences:
        raise UsageError(f"`output_dir` {output_dir} holds a set made with other settings ({'; '.join(differences)}); "
                         f"rerun with the same settings to resume it, or choose a new `output_dir`")
    return dict(existing, **{k: v for k, v in manifest.items() if k not in ("complete",)})


def _is_complete(path, shape):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return array.dtype == np.uint8 and array.shape == shape


def write_labels(output_dir, labels, num_classes):
    """labels.npy: the labels repeated for the 5 severities; an existing file must hold exactly these."""
    stacked = np.tile(np.asarray(labels).astype(labels_dtype(num_classes)), sources.NUM_SEVERITIES)
    path = os.path.join(output_dir, sources.LABELS_FILE)
    if os.path.exists(path):
        existing = np.load(path, allow_pickle=False)
        if existing.shape != stacked.shape or not np.array_equal(existing, stacked):
            raise UsageError(f"{path} holds other labels (shape {existing.shape}) than this data set "
                             f"({stacked.shape}); choose a new `output_dir`")
        return path
    return files.write_npy(path, stacked)


def write_corruption(output_dir, images, labels, corruption, seed, on_chunk=None):
    """Writes one `<generator name>.npy` (5 severities) through a `.partial` file; returns its path."""
    count = len(images)
    path = os.path.join(output_dir, sources.released_file_name(corruption))
    with files.replacing(path, temporary=path + PARTIAL_SUFFIX) as tmp_path:
        stacked = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.uint8,
                                            shape=(sources.NUM_SEVERITIES * count,) + sources.IMAGE_SHAPE)
        for severity in range(1, sources.NUM_SEVERITIES + 1):
            row = (severity - 1) * count
            dataset = sources.generated_dataset(images, labels, corruption, severity, seed, sources.SEED_CHUNK)
            for chunk, _ in dataset:
                stacked[row : row + len(chunk)] = chunk.numpy()
                row += len(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
        stacked.flush()
        del stacked
    return path


def write_corrupted_set(output_dir, images, labels, corruption_names, *, num_classes, seed=0, dataset_info=None,
                        show_progress=True):
    """Writes the set into output_dir, skipping corruptions already complete; returns {"written", "skipped"}."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != sources.IMAGE_SHAPE:
        raise UsageError(f"make_c needs uint8 images [N, 32, 32, 3]; got {images.dtype} {images.shape}")
    if len(images) == 0:
        raise UsageError("the data set has 0 test images; check `dataset` and `num_examples`")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create `output_dir` {output_dir}: {err.strerror or err}") from None
    manifest = dict(dataset_info or {}, num_examples=len(images), seed=int(seed), seed_chunk=sources.SEED_CHUNK,
                    num_classes=int(num_classes), layout="CIFAR-10-C: <name>.npy = 5 severities x N images",
                    mocse_tf_version=mocse_tf.__version__)
    manifest = _check_or_start_manifest(output_dir, manifest)
    manifest_path = os.path.join(output_dir, sources.MANIFEST_FILE)
    files.write_json(manifest_path, manifest, sort_keys=False)
    write_labels(output_dir, labels, num_classes)

    shape = (sources.NUM_SEVERITIES * len(images),) + sources.IMAGE_SHAPE
    done, todo = [], []
    for corruption in corruption_names:
        path = os.path.join(output_dir, sources.released_file_name(corruption))
        (done if _is_complete(path, shape) else todo).append(corruption)
    for corruption in done:
        logging.info("%s: complete, skipped", sources.released_file_name(corruption))
    advance = Progress(len(todo) * shape[0], unit="image").add if show_progress and todo else None
    for corruption in todo:
        started = time.perf_counter()
        write_corruption(output_dir, images, labels, corruption, seed, advance)
        manifest["complete"] = sorted(set(manifest.get("complete", [])) | {corruption})
        files.write_json(manifest_path, manifest, sort_keys=False)
        logging.info("%s: written (%.1f s)", sources.released_file_name(corruption), time.perf_counter() - started)
    return {"written": todo, "skipped": done}


def run_make_c(config, *, show_progress=True):
    """Everything `bin/make_c` does with an EvalConfig: checks it, loads the clean test split, writes the set."""
    from mocse_tf.data import load_arrays

    config = config.checked("make_c")
    clean = load_arrays(config.dataset or "cifar10", "test", data_dir=config.data_dir, local_dir=config.local_dir,
                        seed=config.seed, num_examples=config.num_examples or None)
    dataset_info = {"dataset": clean.name, "local_dir": os.path.abspath(config.local_dir) if config.local_dir else None,
                    "class_names": list(clean.class_names)}
    return write_corrupted_set(config.output_dir, clean.images, clean.labels, config.corruption_names(),
                               num_classes=clean.num_classes, seed=config.seed, dataset_info=dataset_info,
                               show_progress=show_progress)
