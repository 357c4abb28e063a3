"""Argument checks shared by the attacks: each raises UsageError (a ValueError) naming the value received."""

import numbers

import tensorflow as tf

from mocse_tf.errors import UsageError


def check_number(name, value, minimum, strict):
    """Raises UsageError unless value is a real number above (strict) or at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UsageError(f"{name} must be a number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise UsageError(f"{name} must be {relation} {minimum}, got {value!r}")


def check_count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_images(x01):
    """x01 as a float32 tensor [B, ...]; images must already be scaled to [0, 1]."""
    x01 = tf.convert_to_tensor(x01)
    if not x01.dtype.is_floating:
        raise UsageError(
            f"attacks take float images in [0, 1], got dtype {x01.dtype.name}; pass e.g. "
            "tf.cast(images, tf.float32) / 255.0"
        )
    if x01.shape.rank is None or x01.shape.rank < 2:
        raise UsageError(f"attacks take a batch [B, ...] of rank >= 2, got shape {x01.shape}")
    return tf.cast(x01, tf.float32)
