"""Argument checks shared by the attacks: each raises UsageError (a ValueError) naming the value received."""

import numbers

import numpy as np
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


def check_eps(eps):
    """eps is a radius in [0, 1] image units (8/255 = 0.0314 for L-inf, 0.5 for L2)."""
    check_number("eps", eps, 0.0, strict=False)
    if eps > 1:
        raise UsageError(f"eps is a radius in [0, 1] image units (e.g. 8/255 = 0.0314), got {eps!r}; "
                         "divide a radius in pixel levels by 255")


def check_targets(targets, num_classes):
    """Raises UsageError if `targets` name a class outside 0 .. num_classes - 1. Checks only what is known while
    tracing: values of eager or constant targets, and a static number of classes."""
    values = None if targets is None else tf.get_static_value(targets)
    if values is None or num_classes is None:
        return
    values = np.asarray(values)
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise UsageError(f"target classes must lie in 0 .. {num_classes - 1} (the logits have {num_classes} "
                         f"classes), got targets from {values.min()} to {values.max()}")
