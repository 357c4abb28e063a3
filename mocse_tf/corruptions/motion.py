"""ImageMagick's motion blur (`MagickMotionBlurImage`, used by motion_blur and snow) emulated with TF ops.

How ImageMagick 6 does it (MagickCore `MotionBlurImage` / `GetMotionBlurKernel`): the kernel has
width = 2*ceil(radius) + 1 taps with one-sided Gaussian weights exp(-i^2 / (2 sigma^2)), i = 0..width-1,
normalised to sum 1. Tap i reads the pixel at integer offset (dx, dy) = (ceil(i cos(angle) - 0.5),
ceil(i sin(angle) - 0.5)) from the output pixel (x = column, y = row, angle in degrees), with the default
"edge" virtual pixels (coordinates clamped into the image). The sum is taken over 16-bit quanta (8-bit value
* 257) and rounded to the nearest quantum; writing the 8-bit PNG then truncates (quantum // 257).

How this module does it: per image, the offsets are computed from its angle; the image is copied with every
column shift the angle range allows (a small static "bank"; near-vertical motion works on the transposed
image), and each tap gathers whole rows of that bank, so the work per tap is one cheap gather and one
multiply-add. The rounding above is reproduced.

How close: calibrated against ImageMagick 6.9.11-60 Q16 (Debian, driven through Wand exactly as the
generator does) on 60 CIFAR-10 test images x 4 (radius, sigma) pairs with random angles in [-135, 45], colour
and gray: a float64 NumPy version of these steps matched every pixel. This float32 version differs from that
by 1 in about 1e-5 of the pixels (sums that land on a rounding boundary), and reproduces ImageMagick's own
output exactly on the fixed cases in tests/corruptions/test_motion.py.
"""

import math

import numpy as np
import tensorflow as tf

from mocse_tf.corruptions import common

# (radius, sigma) of the ImageMagick motion blur per severity; the angle is drawn per image from U(-45, 45).
MOTION_BLUR_PARAMS = ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5))
MOTION_BLUR_ANGLES = (-45.0, 45.0)


def motion_kernel_weights(radius, sigma):
    """ImageMagick's one-sided Gaussian weights (float64, sum 1) for a motion blur of this radius and sigma."""
    width = int(2 * math.ceil(radius) + 1)
    taps = np.arange(width, dtype=np.float64)
    weights = np.exp(-(taps * taps) / (2.0 * sigma * sigma)) / (math.sqrt(2.0 * math.pi) * sigma)
    return weights / weights.sum()


def motion_offsets(angles, width):
    """Integer tap offsets (dx along columns, dy along rows), each [B, width] int32, for angles [B] in degrees.

    ImageMagick scales the direction (sin, cos) by the width and divides by its hypot; the result is the unit
    direction, rounded per tap with ceil(v - 0.5) (half-way values go down).
    """
    radians = tf.cast(angles, tf.float64) * (math.pi / 180.0)
    point_x = width * tf.sin(radians)
    point_y = width * tf.cos(radians)
    hypot = tf.sqrt(point_x * point_x + point_y * point_y)
    taps = tf.range(width, dtype=tf.float64)[None, :]
    dx = tf.math.ceil(taps * point_y[:, None] / hypot[:, None] - 0.5)
    dy = tf.math.ceil(taps * point_x[:, None] / hypot[:, None] - 0.5)
    return tf.cast(dx, tf.int32), tf.cast(dy, tf.int32)


def _offset_range(width, angle_range, use_cos):
    """Smallest and largest offset (static ints) along one axis over all taps and angles in angle_range."""
    lo, hi = (math.radians(a) for a in angle_range)
    fn = math.cos if use_cos else math.sin
    # Extremes of cos / sin over [lo, hi]: the end points and any multiple of pi/2 inside.
    candidates = [fn(lo), fn(hi)] + [fn(k * math.pi / 2) for k in range(-8, 9) if lo <= k * math.pi / 2 <= hi]
    low_unit, high_unit = min(candidates), max(candidates)
    taps = np.arange(width)
    low = int(np.min(np.ceil(taps * low_unit - 0.5)))
    high = int(np.max(np.ceil(taps * high_unit - 0.5)))
    return low, high


def _blur_along_rows_bank(images, weights, dx, dy, dx_range):
    """Sum over taps of weights[t] * images shifted by (dx[:, t], dy[:, t]) with clamped coordinates.

    images: uint8 [B, H, W, C]; dx, dy: int32 [B, T]; dx_range: static (min, max) of dx. Returns float32.
    """
    batch = tf.shape(images)[0]
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    dx_min, dx_max = dx_range
    # Edge padding so that a column shift is a static slice: the bank holds every possible shifted copy.
    left, right = max(0, -dx_min), max(0, dx_max)
    pieces = [images[:, :, :1, :]] * left + [images] + [images[:, :, -1:, :]] * right
    padded = tf.reshape(tf.concat(pieces, axis=2), [batch, height, (width + left + right) * channels])
    shifts = range(dx_min, dx_max + 1)
    bank = tf.stack(
        [padded[:, :, (left + s) * channels:(left + s + width) * channels] for s in shifts], axis=1
    )
    bank = tf.reshape(bank, [batch, len(shifts) * height, width * channels])
    rows = tf.clip_by_value(dy[:, :, None] + tf.range(height)[None, None, :], 0, height - 1)
    bank_rows = (tf.clip_by_value(dx, dx_min, dx_max) - dx_min)[:, :, None] * height + rows  # [B, T, H]
    total = None
    for tap, weight in enumerate(weights):
        shifted = tf.cast(tf.gather(bank, bank_rows[:, tap], batch_dims=1), tf.float32)
        term = shifted * tf.constant(weight, tf.float32)
        total = term if total is None else total + term
    return tf.reshape(total, [batch, height, width, channels])


def imagemagick_motion_blur(images, radius, sigma, angles, angle_range):
    """`MagickMotionBlurImage(radius, sigma, angle)` on uint8 [B, H, W, C] images, one angle per image.

    angles: float [B] in degrees, all inside the static angle_range (lo, hi) that sizes the shift bank.
    Returns uint8 like the 8-bit PNG ImageMagick writes.
    """
    weights = motion_kernel_weights(radius, sigma)
    width = len(weights)
    dx, dy = motion_offsets(angles, width)
    dx_range = _offset_range(width, angle_range, use_cos=True)
    dy_range = _offset_range(width, angle_range, use_cos=False)
    # The bank is built along the axis with fewer possible shifts; near-vertical motion works transposed.
    if dx_range[1] - dx_range[0] <= dy_range[1] - dy_range[0]:
        total = _blur_along_rows_bank(images, weights, dx, dy, dx_range)
    else:
        transposed = tf.transpose(images, [0, 2, 1, 3])
        total = tf.transpose(_blur_along_rows_bank(transposed, weights, dy, dx, dy_range), [0, 2, 1, 3])
    # Sum on the 16-bit scale rounded to the nearest quantum, then the 8-bit PNG write truncates.
    quantum = tf.floor(total * 257.0 + 0.5)
    return tf.cast(tf.floor(quantum / 257.0), tf.uint8)


def motion_blur(images, severity, seed):
    """CIFAR-10-C motion_blur: ImageMagick motion blur with (radius, sigma) per severity, angle ~ U(-45, 45)."""
    radius, sigma = MOTION_BLUR_PARAMS[severity - 1]
    angles = tf.random.stateless_uniform(
        tf.shape(images)[:1], common.as_seed(seed), *MOTION_BLUR_ANGLES, dtype=tf.float64
    )
    return imagemagick_motion_blur(images, radius, sigma, angles, MOTION_BLUR_ANGLES)
