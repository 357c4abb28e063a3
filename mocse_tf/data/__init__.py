"""Data sets (built-in synthetic, CIFAR-10/100 via tfds, a local CIFAR-10 folder), augmentation and tf.data pipelines.

Public API: `load_arrays(name, split, ...) -> ArrayDataset`, `make_pipeline(images, labels, batch_size, ...)`,
the name tuples DATASETS and AUGMENT_POLICIES, and `describe_policy(name)`.
"""

from mocse_tf.data.augment import AUGMENT_POLICIES, check_policy, describe_policy
from mocse_tf.data.datasets import DATASETS, SPLITS, ArrayDataset, check_dataset, load_arrays
from mocse_tf.data.pipeline import make_pipeline

__all__ = [
    "AUGMENT_POLICIES",
    "DATASETS",
    "SPLITS",
    "ArrayDataset",
    "check_dataset",
    "check_policy",
    "describe_policy",
    "load_arrays",
    "make_pipeline",
]
