"""Spatial filters with SciPy / scikit-image / OpenCV border semantics, as batched TensorFlow ops.

The CIFAR-10-C generator mixes libraries whose borders differ: scikit-image `gaussian` (SciPy
`mode='nearest'` by default, `'reflect'` in elastic_transform) and OpenCV `filter2D` / `GaussianBlur`
(BORDER_REFLECT_101, which SciPy calls `'mirror'`). Padding is done by gathering with index arrays computed
at trace time, so every mode works for any pad width, eagerly, inside `tf.function` and in `tf.data.map`.
"""

import numpy as np
import tensorflow as tf

from mocse_tf.errors import check_choice

# SciPy ndimage mode names -> how an out-of-range index maps back into [0, n).
#   nearest: a a a | a b c d | d d d          (OpenCV BORDER_REPLICATE)
#   reflect: c b a | a b c d | d c b          (half-sample symmetric; OpenCV BORDER_REFLECT)
#   mirror:  d c b | a b c d | c b a          (whole-sample symmetric; OpenCV BORDER_REFLECT_101)
#   wrap:    b c d | a b c d | a b c          (periodic)
BORDER_MODES = ("nearest", "reflect", "mirror", "wrap")


def border_indices(n, before, after, mode):
    """Source indices, shape [before + n + after], that pad an axis of length n in the given SciPy mode."""
    check_choice("border mode", mode, BORDER_MODES)
    idx = np.arange(-before, n + after)
    if mode == "nearest":
        return np.clip(idx, 0, n - 1)
    if mode == "wrap":
        return np.mod(idx, n)
    if mode == "reflect":
        period = 2 * n
        idx = np.mod(idx, period)
        return np.where(idx >= n, period - 1 - idx, idx)
    if n == 1:  # mirror of a single sample
        return np.zeros_like(idx)
    period = 2 * n - 2
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx)


def pad_2d(images, pad_h, pad_w, mode):
    """Pads a [B, H, W, C] tensor by (pad_h, pad_w) on both sides of the two spatial axes."""
    height, width = images.shape[1], images.shape[2]
    rows = border_indices(height, pad_h, pad_h, mode)
    cols = border_indices(width, pad_w, pad_w, mode)
    images = tf.gather(images, rows, axis=1)
    return tf.gather(images, cols, axis=2)


def gaussian_kernel_1d(sigma, truncate=4.0):
    """SciPy's `gaussian_filter1d` weights, bit for bit: radius int(truncate * sigma + 0.5), normalised to sum 1.

    The expression order copies `scipy.ndimage._filters._gaussian_kernel1d`; a different but equivalent
    formula changes the last bit of some weights, and after the generator's uint8 truncation a flat region
    can then come out one level darker.
    """
    sigma = float(sigma)
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * x**2)
    return weights / weights.sum()


def correlate1d_symmetric(images, weights, axis, mode):
    """SciPy `correlate1d` with an odd symmetric kernel along `axis` (1 = rows, 2 = columns) of [B, H, W, C].

    SciPy evaluates a symmetric kernel as w[0]*x[i] + sum over j = r..1 of (x[i-j] + x[i+j])*w[j], outermost
    pair first, in double precision, and writes the result in the input's dtype; this function does the same
    elementwise operations in the same order, so the result is bit-identical to SciPy (float64 and float32).
    """
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.float64:
        return tf.cast(correlate1d_symmetric(tf.cast(images, tf.float64), weights, axis, mode), images.dtype)
    weights = np.asarray(weights, np.float64)
    radius = len(weights) // 2
    if len(weights) % 2 != 1 or not np.array_equal(weights, weights[::-1]):
        raise ValueError(f"expected an odd symmetric kernel; received {weights.tolist()}")
    if radius == 0:
        return images * tf.constant(weights[0], images.dtype)
    size = images.shape[axis]
    padded = tf.gather(images, border_indices(size, radius, radius, mode), axis=axis)

    def shifted(offset):  # x[i + offset] for every i in [0, size)
        begin = [0, 0, 0, 0]
        begin[axis] = radius + offset
        extent = [-1, -1, -1, -1]
        extent[axis] = size
        return tf.slice(padded, begin, extent)

    out = images * tf.constant(weights[radius], images.dtype)
    for j in range(radius, 0, -1):
        # out + y written as out - (pair * -w): inside tf.function Grappler turns chains of Add into AddN,
        # which sums in another order; it leaves Sub alone, and negating a weight is exact.
        out = out - (shifted(-j) + shifted(j)) * tf.constant(-weights[radius - j], images.dtype)
    return out


def filter_2d(images, kernel, mode):
    """Correlates every channel of [B, H, W, C] float images with one odd-sized 2-D kernel (OpenCV filter2D)."""
    images = tf.convert_to_tensor(images)
    channels = images.shape[-1]
    kernel = np.asarray(kernel, np.float64)
    kh, kw = kernel.shape
    padded = pad_2d(images, kh // 2, kw // 2, mode)
    k = tf.constant(np.tile(kernel[:, :, None, None], (1, 1, channels, 1)), images.dtype)
    return tf.nn.depthwise_conv2d(padded, k, strides=[1, 1, 1, 1], padding="VALID")


def gaussian_filter(images, sigma, mode="nearest", truncate=4.0):
    """scikit-image `gaussian(..., channel_axis=-1)` on [B, H, W, C] float images (no clipping, no rescaling).

    Rows first, then columns, each with SciPy's symmetric evaluation order: bit-identical to
    `scipy.ndimage.gaussian_filter(image, (sigma, sigma, 0), mode=mode, truncate=truncate)` per image.
    """
    kernel = gaussian_kernel_1d(sigma, truncate)
    rows = correlate1d_symmetric(images, kernel, 1, mode)
    return correlate1d_symmetric(rows, kernel, 2, mode)
