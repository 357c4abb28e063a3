"""The 19 CIFAR-10-C corruptions as TensorFlow ops on uint8 batches, with the benchmark's severity parameters.

    from mocse_tf import corruptions
    corrupted = corruptions.corrupt(images, "frosted_glass_blur", severity=3, seed=7)

`images` is uint8 [B, 32, 32, 3] (or one [32, 32, 3] image), a NumPy array or a tensor; the result is a uint8
tensor of the same shape. Randomness comes only from stateless ops seeded by `seed`, so a call is reproducible
eagerly, in `tf.function` and in `tf.data.map`. Names are tfds `cifar10_corrupted` names; the generator's
`glass_blur` and `elastic_transform` are accepted too.
"""

import numpy as np
import tensorflow as tf

from mocse_tf.corruptions.registry import (
    ALIASES,
    ALL,
    BENCHMARK,
    DETERMINISTIC,
    DISPLAY_GROUPS,
    EXTRA,
    GENERATOR_NAMES,
    SEVERITIES,
    apply,
    canonical_name,
    get_corruption,
    validate_severity,
)


@tf.autograph.experimental.do_not_convert
def corrupt(images, name, severity, seed=0):
    """Corrupts a uint8 batch [B, 32, 32, 3] (or a single [32, 32, 3] image) with one CIFAR-10-C corruption.

    Args:
      images: uint8 NumPy array or tensor, [B, 32, 32, 3] or [32, 32, 3]; B may be unknown inside tf.data.
      name: a name in `ALL` or an alias in `ALIASES` (e.g. "glass_blur").
      severity: Python int from 1 to 5.
      seed: int or shape-[2] integer tensor; each image in the batch gets independent randomness, but the
        same seed gives the same noise to the same batch position: give every batch its own seed (e.g.
        tf.random.experimental.stateless_fold_in(tf.constant([seed, 0]), batch_index)).
    Returns:
      uint8 tensor with the shape of `images`.
    Raises:
      UsageError: unknown name, severity outside 1..5, images that are not uint8 [B, 32, 32, 3].
    """
    single = np.ndim(images) == 3 if not isinstance(images, tf.Tensor) else images.shape.rank == 3
    if single:
        images = images[None]
    corrupted = apply(images, name, severity, seed)
    return corrupted[0] if single else corrupted


__all__ = [
    "ALIASES",
    "ALL",
    "BENCHMARK",
    "DETERMINISTIC",
    "DISPLAY_GROUPS",
    "EXTRA",
    "GENERATOR_NAMES",
    "SEVERITIES",
    "apply",
    "canonical_name",
    "corrupt",
    "get_corruption",
    "validate_severity",
]
