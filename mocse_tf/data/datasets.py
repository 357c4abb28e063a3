"""The data set registry: every `dataset` name loads through `load_arrays` into one in-memory ArrayDataset."""

import dataclasses

import numpy as np

from mocse_tf.data import cifar_local, synthetic, tfds_source
from mocse_tf.errors import UsageError, check_choice
from mocse_tf.labels import NUMPY_LABEL_DTYPE

DATASETS = ("synthetic", "cifar10", "cifar10_local", "cifar100")
SPLITS = ("train", "test")


def check_dataset(name):
    return check_choice("dataset", name, DATASETS)


@dataclasses.dataclass(frozen=True, eq=False)
class ArrayDataset:
    """One split in memory: images uint8 [N, 32, 32, 3] (raw pixels), labels int64 [N], class names, data set name."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple
    name: str

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[1:] != (32, 32, 3):
            raise ValueError(f"images must be uint8 [N, 32, 32, 3], got {self.images.dtype} {self.images.shape}")
        if self.labels.dtype != NUMPY_LABEL_DTYPE or self.labels.shape != (len(self.images),):
            raise ValueError(f"labels must be int64 [{len(self.images)}], got {self.labels.dtype} {self.labels.shape}")

    @property
    def num_classes(self):
        return len(self.class_names)

    def __len__(self):
        return len(self.images)


def load_arrays(name, split, *, data_dir=None, local_dir=None, seed=0, num_examples=None):
    """Loads split 'train' or 'test' of data set `name` (one of DATASETS) as an ArrayDataset.

    data_dir: tfds data folder (cifar10, cifar100). local_dir: cifar-10-batches-py folder or its parent
    (cifar10_local). seed: picks the synthetic set (the real sets ignore it). num_examples: keep the first n
    (deterministic; the real sets hold at most what their files hold; synthetic generates exactly n).
    """
    check_dataset(name)
    check_choice("split", split, SPLITS)
    if num_examples is not None and (
        isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) or num_examples <= 0
    ):
        raise UsageError(f"num_examples must be a positive integer or None (all), got {num_examples!r}")

    if name == "synthetic":
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise UsageError(f"the synthetic data set needs a non-negative integer seed, got {seed!r}")
        count = synthetic.DEFAULT_NUM_EXAMPLES[split] if num_examples is None else num_examples
        images, labels = synthetic.generate(count, split=split, seed=int(seed))
        class_names = synthetic.CLASS_NAMES
    elif name == "cifar10_local":
        images, labels, class_names = cifar_local.load(local_dir, split)
    else:
        images, labels, class_names = tfds_source.load(name, split, data_dir=data_dir)

    if num_examples is not None:
        images, labels = images[:num_examples], labels[:num_examples]
    return ArrayDataset(
        images=np.ascontiguousarray(images, dtype=np.uint8),
        labels=np.asarray(labels, dtype=NUMPY_LABEL_DTYPE),
        class_names=tuple(class_names),
        name=name,
    )
