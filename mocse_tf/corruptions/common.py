"""Helpers every corruption shares: input checks, uint8 <-> float conversions with the generator's
truncating `np.uint8(...)` save, and seeds for stateless random ops."""

import numpy as np
import tensorflow as tf

from mocse_tf.errors import UsageError

IMAGE_SIZE = 32
CHANNELS = 3


def validate_images(images):
    """Returns `images` as a uint8 tensor [B, 32, 32, 3]; raises UsageError saying what was received otherwise.

    A single image [32, 32, 3] is not accepted here (the public `corrupt` adds the batch axis itself).
    """
    if not isinstance(images, tf.Tensor):
        array = np.asarray(images)
        if array.dtype != np.uint8:
            raise UsageError(
                f"images must be uint8 [B, 32, 32, 3]; received dtype {array.dtype} with shape {array.shape}. "
                "Convert pixels in 0..255 with np.asarray(images, np.uint8) (do not pass floats in [0, 1])."
            )
        images = tf.convert_to_tensor(array)
    if images.dtype != tf.uint8:
        raise UsageError(
            f"images must be uint8 [B, 32, 32, 3]; received dtype {images.dtype.name} with shape "
            f"{images.shape}. Convert pixels in 0..255 with tf.cast(images, tf.uint8) (not floats in [0, 1])."
        )
    shape = images.shape
    expected = (IMAGE_SIZE, IMAGE_SIZE, CHANNELS)
    if shape.rank != 4 or tuple(shape[1:]) != expected:
        raise UsageError(
            f"images must have shape [B, 32, 32, 3] (a batch of 32x32 RGB images); received shape {shape}. "
            "Add a batch axis to a single image with images[None], convert gray images to RGB, and inside "
            "tf.data give decoded images a static shape with tf.ensure_shape(images, [None, 32, 32, 3])."
        )
    return images


def divide(x, denominator):
    """x / denominator, correctly rounded, also inside `tf.function`.

    Grappler rewrites a division by a constant into a multiplication by its rounded reciprocal, which differs
    from NumPy's division in the last bit and then moves values across the generator's truncation boundaries
    (k / 255 * 255 is no longer k). DivNoNan is left alone and equals x / denominator for a non-zero one.
    """
    x = tf.convert_to_tensor(x)
    return tf.math.divide_no_nan(x, tf.cast(denominator, x.dtype))


def to_unit_float(images, dtype=tf.float32):
    """uint8 pixels -> floats in [0, 1] (x / 255), float32 unless `dtype` says otherwise (e.g. tf.float64)."""
    return divide(tf.cast(images, dtype), 255.0)


def from_pixel_float(x):
    """Floats on the 0..255 scale -> uint8: clip to [0, 255], then truncate toward zero like `np.uint8(x)`."""
    x = tf.clip_by_value(x, tf.constant(0.0, x.dtype), tf.constant(255.0, x.dtype))
    return tf.cast(tf.floor(x), tf.uint8)


def from_unit_float(x):
    """Floats on the [0, 1] scale -> uint8: clip to [0, 1], multiply by 255 (in x's dtype), truncate toward zero.

    This is the generator's `np.clip(x, 0, 1) * 255` followed by the save's `np.uint8(...)` (a floor, not a
    rounding): a value of 0.9999 * 255 = 254.97 becomes 254.
    """
    x = tf.clip_by_value(x, tf.constant(0.0, x.dtype), tf.constant(1.0, x.dtype))
    return tf.cast(tf.floor(x * tf.constant(255.0, x.dtype)), tf.uint8)


def map_in_chunks(function, images, chunk_size=128):
    """function(images) for a uint8 batch [B, 32, 32, 3], run on chunks of at most `chunk_size` images.

    For deterministic corruptions whose intermediate tensors outgrow the CPU caches on large batches; the
    result is the same as one call on the whole batch. One code path for every batch size (a tf.cond between
    "whole" and "chunked" would trace the corruption twice).
    """
    batch = tf.shape(images)[0]
    chunk = tf.maximum(tf.minimum(batch, chunk_size), 1)
    chunks = tf.maximum((batch + chunk - 1) // chunk, 1)  # an empty batch runs one padded image
    shape = [IMAGE_SIZE, IMAGE_SIZE, CHANNELS]
    padded = tf.pad(images, [[0, chunks * chunk - batch], [0, 0], [0, 0], [0, 0]])
    stacked = tf.reshape(padded, tf.concat([[chunks, chunk], shape], 0))
    spec = tf.TensorSpec([None] + shape, images.dtype)
    out = tf.map_fn(function, stacked, fn_output_signature=spec, parallel_iterations=1)
    return tf.reshape(out, [-1] + shape)[:batch]


def as_seed(seed):
    """An int or a shape-[2] integer tensor/array -> a shape-[2] int64 tensor for `tf.random.stateless_*`."""
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed), 0], tf.int64)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise UsageError(f"seed must be an int or a shape-[2] integer tensor; received dtype {seed.dtype.name}")
    if seed.shape.rank == 0:
        return tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    if seed.shape.rank != 1 or (seed.shape[0] is not None and seed.shape[0] != 2):
        raise UsageError(f"seed must be an int or a shape-[2] integer tensor; received shape {seed.shape}")
    return tf.cast(seed, tf.int64)


def split_seed(seed, num):
    """`num` independent shape-[2] seeds derived from `seed` (one per random step of a corruption)."""
    return tf.unstack(tf.random.experimental.stateless_split(as_seed(seed), num=num))
