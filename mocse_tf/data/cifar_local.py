"""Reads a local `cifar-10-batches-py` folder (the python-pickle CIFAR-10 release), with batch files of any length."""

import pathlib
import pickle
import re

import numpy as np

from mocse_tf.errors import UsageError

FOLDER_NAME = "cifar-10-batches-py"
CIFAR10_CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
_PIXELS_PER_IMAGE = 32 * 32 * 3
_EXPECTED = (
    f"a {FOLDER_NAME} folder (or its parent) holding data_batch_1 ... data_batch_5, test_batch and batches.meta, "
    "as extracted from cifar-10-python.tar.gz"
)


def load(local_dir, split):
    """Returns (images uint8 [N, 32, 32, 3], labels int64 [N], class_names) of split 'train' or 'test'."""
    folder = resolve_folder(local_dir)
    if split == "train":
        files = [path for path in folder.glob("data_batch_*") if _batch_number(path) is not None]
        files.sort(key=_batch_number)
        wanted = "data_batch_1 ... data_batch_5"
    else:
        files = [path for path in [folder / "test_batch"] if path.is_file()]
        wanted = "test_batch"
    if not files:
        raise UsageError(f"{folder} has no {split} batch file ({wanted}): `local_dir` must point to {_EXPECTED}")
    images, labels = zip(*(_read_batch(path) for path in files))
    return np.concatenate(images), np.concatenate(labels), _class_names(folder)


def resolve_folder(local_dir):
    """The batch folder: `local_dir` itself, or its `cifar-10-batches-py` child."""
    if local_dir is None:
        raise UsageError(f"`dataset`=cifar10_local needs `local_dir`=PATH: {_EXPECTED}")
    folder = pathlib.Path(local_dir).expanduser()
    if not folder.exists():
        raise UsageError(f"local data folder {folder} does not exist: `local_dir` must point to {_EXPECTED}")
    if not folder.is_dir():
        raise UsageError(f"local data path {folder} is not a folder: `local_dir` must point to {_EXPECTED}")
    if (folder / FOLDER_NAME).is_dir():
        return folder / FOLDER_NAME
    return folder


def _batch_number(path):
    match = re.fullmatch(r"data_batch_(\d+)", path.name)
    return int(match.group(1)) if match else None


def _read_batch(path):
    batch = _unpickle(path)
    data = _field(batch, "data", path)
    labels = _field(batch, "labels", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != (
        _PIXELS_PER_IMAGE
    ):
        found = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UsageError(
            f"{path}: 'data' must be uint8 [n, {_PIXELS_PER_IMAGE}] (n images of 3x32x32, channel-major), found "
            f"{found}: the file is not an intact CIFAR-10 python batch; re-extract cifar-10-python.tar.gz"
        )
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise UsageError(f"{path}: 'labels' is not a list of integers; re-extract cifar-10-python.tar.gz") from None
    if len(labels) != len(data):
        raise UsageError(
            f"{path}: {len(data)} images but {len(labels)} labels; re-extract cifar-10-python.tar.gz"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASS_NAMES)):
        raise UsageError(
            f"{path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}; is this CIFAR-100? "
            "Only cifar-10-batches-py folders are read"
        )
    # Channel-major rows (1024 red, 1024 green, 1024 blue) -> HWC images.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _class_names(folder):
    meta_path = folder / "batches.meta"
    if not meta_path.is_file():
        return CIFAR10_CLASS_NAMES  # the meta file only holds these names; its absence is no reason to fail
    names = _field(_unpickle(meta_path), "label_names", meta_path)
    try:
        names = tuple(name.decode() if isinstance(name, bytes) else str(name) for name in names)
    except (TypeError, UnicodeDecodeError):
        raise UsageError(f"{meta_path}: 'label_names' is not a list of names") from None
    if len(names) != len(CIFAR10_CLASS_NAMES):
        raise UsageError(f"{meta_path}: expected 10 label names, found {len(names)}")
    return names


def _field(batch, key, path):
    """batch[b'key'] (the original Python-2 pickles) or batch['key'] (re-pickled by Python 3)."""
    if not isinstance(batch, dict):
        raise UsageError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise UsageError(f"{path}: no {key!r} entry (keys: {sorted(map(str, batch))}); is it a CIFAR-10 python batch?")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays only: a data folder must not be able to run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 protocol-2 pickles store bytes
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path):
    try:
        with open(path, "rb") as file:
            return _ArrayUnpickler(file, encoding="bytes").load()
    except OSError as err:
        raise UsageError(f"{path}: cannot read it ({err.strerror})") from None
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise UsageError(
            f"{path}: not a readable CIFAR-10 python batch ({type(err).__name__}: {err}); re-extract "
            "cifar-10-python.tar.gz"
        ) from None
