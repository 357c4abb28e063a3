"""The CIFAR-10-C blur corruptions except motion blur: defocus, frosted glass, zoom and Gaussian blur.

Each follows the generator's steps, dtypes and evaluation order closely enough that the deterministic ones
reproduce its uint8 output (see tests/corruptions/test_blur.py for the measured agreement).
"""

import functools

import numpy as np
import tensorflow as tf

from mocse_tf.corruptions import common, filters

GAUSSIAN_BLUR_SIGMAS = (0.4, 0.6, 0.7, 0.8, 1.0)
DEFOCUS_PARAMS = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))  # (disk radius, alias sigma)
GLASS_PARAMS = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))  # (sigma, shift, iterations)
ZOOM_ENDS = (1.06, 1.11, 1.16, 1.21, 1.26)  # exclusive ends of arange(1, end, 0.01)


def gaussian_blur(images, severity, seed=None):
    """scikit-image `gaussian` (mode 'nearest', truncate 4) on x / 255 in float64, clip, x 255, truncate."""
    del seed  # deterministic
    sigma = GAUSSIAN_BLUR_SIGMAS[severity - 1]
    x = common.to_unit_float(images, tf.float64)
    return common.from_unit_float(filters.gaussian_filter(x, sigma, mode="nearest", truncate=4.0))


# --- defocus blur -------------------------------------------------------------------------------------------


def defocus_kernel(radius, alias_sigma):
    """The generator's `disk(radius, alias_blur)` bit for bit: a float32 17x17 binary disk normalised to sum 1,
    smoothed by OpenCV `GaussianBlur` with a 3x3 window (float32 arithmetic in OpenCV's order)."""
    offsets = np.arange(-8, 9)
    xx, yy = np.meshgrid(offsets, offsets)
    disk = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    # OpenCV's bit-exact 3-tap Gaussian (computed in double, stored as float32).
    tail = np.exp(-0.5 / (alias_sigma * alias_sigma))
    side = np.float32(tail * (1.0 / (1.0 + 2.0 * tail)))
    centre = np.float32(1.0 / (1.0 + 2.0 * tail))
    # Separable symmetric 3-tap filter, horizontal then vertical, border reflect-101 (np.pad 'reflect').
    padded = np.pad(disk, 1, mode="reflect")
    rows = padded[:, 1:-1] * centre + (padded[:, :-2] + padded[:, 2:]) * side
    return (rows[1:-1] * centre + (rows[:-2] + rows[2:]) * side).astype(np.float32)


def _nonzero_core(kernel):
    """The smallest centred odd square holding every non-zero weight (the rest only adds exact zeros)."""
    centre = kernel.shape[0] // 2
    rows, cols = np.nonzero(kernel)
    half = int(max(np.abs(rows - centre).max(), np.abs(cols - centre).max()))
    return kernel[centre - half : centre + half + 1, centre - half : centre + half + 1]


def defocus_blur(images, severity, seed=None):
    """OpenCV `filter2D` (border reflect-101) of x / 255 in float64 with the float32 defocus kernel, clip.

    OpenCV runs a 17x17 float64 filter2D through a DFT, whose round-off (~1e-16) no other order reproduces;
    the direct sum here gave the same uint8 output on every pixel of 1017 CIFAR-10 test images at all
    severities (the float32 kernel sums to 1 + 1e-9..5e-8, so flat regions sit clear of truncation boundaries).
    """
    del seed  # deterministic
    kernel = _nonzero_core(defocus_kernel(*DEFOCUS_PARAMS[severity - 1])).astype(np.float64)
    x = common.to_unit_float(images, tf.float64)
    return common.from_unit_float(filters.filter_2d(x, kernel, mode="mirror"))


# --- zoom blur ----------------------------------------------------------------------------------------------


def zoom_factors(severity):
    """The generator's `np.arange(1, end, 0.01)`: 7 / 12 / 16 / 21 / 26 factors (the end is a float)."""
    return np.arange(1, ZOOM_ENDS[severity - 1], 0.01)


def clipped_zoom_taps(size, factor):
    """Linear-interpolation taps of the generator's `clipped_zoom` along one axis: (first, w_first, second,
    w_second), each [size], so that output[k] = input[first[k]] * w_first[k] + input[second[k]] * w_second[k].

    Centre crop of ceil(size / factor) samples at (size - crop) // 2, SciPy `zoom(order=1)` to
    round(crop * factor) samples (sample k sits at input coordinate k * (crop - 1) / (zoomed - 1)), keep `size`
    samples from (zoomed - size) // 2.
    """
    crop = int(np.ceil(size / factor))
    top = (size - crop) // 2
    zoomed = int(round(crop * factor))
    step = (crop - 1) / (zoomed - 1) if zoomed != 1 else 1.0
    trim = (zoomed - size) // 2
    coords = np.arange(trim, trim + size) * step
    starts = np.floor(coords).astype(np.int64)
    fracs = coords - starts
    first = top + np.minimum(starts, crop - 1)
    second = top + np.minimum(starts + 1, crop - 1)
    return first, 1.0 - fracs, second, fracs


def _zoom_geometry(factor):
    """(crop, zoomed): the two sizes that fully determine a clipped zoom of a 32-pixel axis. The 26 factors
    of severity 5 give only 14 distinct zooms (and 1.00 and 1.01 are both the identity)."""
    crop = int(np.ceil(common.IMAGE_SIZE / factor))
    return crop, int(round(crop * factor))


def _zoom_gather_plan(factor):
    """Flat source indices [4096] and row / column weights [4096, 1] of one clipped zoom of a 32x32 image,
    as four 1024-pixel blocks (top-left, top-right, bottom-left, bottom-right taps) in SciPy's summation order.
    The row weights are negated so that the sum is minus the zoom (see `_zoom_blur_chunk`)."""
    size = common.IMAGE_SIZE
    first, w_first, second, w_second = clipped_zoom_taps(size, factor)
    rows, row_weights = (first, second), (w_first, w_second)
    indices, weights_r, weights_c = [], [], []
    for a in (0, 1):
        for b in (0, 1):
            indices.append((rows[a][:, None] * size + rows[b][None, :]).reshape(-1))
            weights_r.append(np.repeat(-row_weights[a], size))
            weights_c.append(np.tile(row_weights[b], size))
    indices = np.concatenate(indices).astype(np.int32)
    return indices, np.concatenate(weights_r)[:, None], np.concatenate(weights_c)[:, None]


def _zoom_blur_chunk(images, severity):
    """zoom_blur of one chunk of images; see `zoom_blur`."""
    factors = zoom_factors(severity)
    size, channels = common.IMAGE_SIZE, common.CHANNELS
    batch = tf.shape(images)[0]
    x = common.to_unit_float(images, tf.float32)
    # Pixel-major layout [1024, B * 3]: every gather below moves whole contiguous rows.
    pixels = tf.transpose(tf.reshape(x, tf.stack([batch, size * size, channels])), [1, 0, 2])
    pixels = tf.reshape(pixels, [size * size, -1])
    pixels64 = tf.cast(pixels, tf.float64)
    negated_zooms = {(size, size): -pixels}  # crop 32 zoomed to 32 is the identity (factors 1.00 and 1.01)
    total = tf.zeros_like(pixels)
    for factor in factors:
        geometry = _zoom_geometry(factor)
        if geometry not in negated_zooms:
            indices, weights_r, weights_c = _zoom_gather_plan(factor)
            taps = (tf.gather(pixels64, indices, axis=0) * weights_r) * weights_c
            zoomed = ((taps[:1024] + taps[1024:2048]) + taps[2048:3072]) + taps[3072:]
            negated_zooms[geometry] = tf.cast(zoomed, tf.float32)
        # total + zoom, written as total - (-zoom): Grappler folds chains of Add into AddN, whose summation
        # order differs from the generator's `out += ...`; it leaves Sub alone.
        total = total - negated_zooms[geometry]
    blurred = common.divide(pixels + total, float(len(factors) + 1))
    blurred = tf.transpose(tf.reshape(blurred, tf.stack([size * size, batch, channels])), [1, 0, 2])
    return common.from_unit_float(tf.reshape(blurred, tf.shape(images)))


def zoom_blur(images, severity, seed=None):
    """(x + sum of clipped zooms of x) / (number of factors + 1), in float32 like the generator.

    Bit-identical to the generator's SciPy computation: each zoom is interpolated in float64 with SciPy's
    operations in SciPy's order (((v * w_row) * w_col) summed over the 4 taps), rounded to float32, and the
    zooms are added one by one in float32 in the generator's order, because that rounding decides the final
    truncation in flat regions.
    """
    del seed  # deterministic
    return common.map_in_chunks(_zoom_blur_chunk_function(severity), images)


@functools.lru_cache(maxsize=None)
def _zoom_blur_chunk_function(severity):
    """One traced graph per severity, shared by every call (eager calls then run it as a whole too)."""
    spec = tf.TensorSpec([None, common.IMAGE_SIZE, common.IMAGE_SIZE, common.CHANNELS], tf.uint8)
    return tf.function(lambda chunk: _zoom_blur_chunk(chunk, severity), input_signature=[spec], autograph=False)


# --- frosted glass blur -------------------------------------------------------------------------------------


def glass_shuffle_sources(shifts):
    """Flat source indices [B, 1024] of one glass-blur iteration, given shifts [B, 30, 30, 2] in {-1, 0}.

    The generator visits rows 31..2 and, in each, columns 31..2, and copies pixel (h + dy, w + dx) onto (h, w)
    (its "swap" is a one-way copy through NumPy views). A source is up and/or left of its target, so it is
    visited later and still holds its value from the start of the iteration: the whole iteration is one
    gather from the iteration's input. shifts[..., 0] is dx (drawn first), shifts[..., 1] is dy.
    """
    size = common.IMAGE_SIZE
    rows = tf.range(2, size)[:, None]
    cols = tf.range(2, size)[None, :]
    sources = (rows + shifts[..., 1]) * size + (cols + shifts[..., 0])  # [B, 30, 30]
    batch = tf.shape(shifts)[0]
    identity = tf.broadcast_to(tf.reshape(tf.range(size * size), [1, size, size]), tf.stack([batch, size, size]))
    # Rows and columns 0 and 1 are never targets: keep them, and write the shuffled 30x30 interior.
    interior = tf.pad(sources, [[0, 0], [2, 0], [2, 0]])
    mask = tf.pad(tf.ones([size - 2, size - 2], tf.bool), [[2, 0], [2, 0]])
    return tf.reshape(tf.where(mask, interior, identity), tf.stack([batch, size * size]))


def glass_blur_shifts(batch, iterations, seed):
    """The random shifts of every iteration: a list of `iterations` int32 tensors [batch, 30, 30, 2] in {-1, 0}
    (np.random.randint(-1, 1) excludes its upper bound), [..., 0] = dx, [..., 1] = dy, independent everywhere."""
    size = common.IMAGE_SIZE
    shape = tf.stack([batch, size - 2, size - 2, 2])
    return [
        tf.random.stateless_uniform(shape, iteration_seed, minval=-1, maxval=1, dtype=tf.int32)
        for iteration_seed in common.split_seed(seed, iterations)
    ]


def glass_blur_with_shifts(images, severity, shifts):
    """Gaussian blur, uint8 truncation, the one-way pixel shuffle with the given shifts (one tensor per
    iteration), Gaussian blur, clip: the deterministic part of `frosted_glass_blur`."""
    sigma = GLASS_PARAMS[severity - 1][0]
    size = common.IMAGE_SIZE
    x = common.to_unit_float(images, tf.float64)
    pixels = common.from_unit_float(filters.gaussian_filter(x, sigma, mode="nearest"))
    batch = tf.shape(images)[0]
    flat = tf.reshape(pixels, tf.stack([batch, size * size, common.CHANNELS]))
    for iteration_shifts in shifts:
        flat = tf.gather(flat, glass_shuffle_sources(iteration_shifts), batch_dims=1)
    shuffled = tf.reshape(flat, tf.shape(images))
    blurred = filters.gaussian_filter(common.to_unit_float(shuffled, tf.float64), sigma, mode="nearest")
    return common.from_unit_float(blurred)


def frosted_glass_blur(images, severity, seed):
    """Gaussian blur, uint8 truncation, local one-way pixel shuffle (shifts in {-1, 0}), Gaussian blur, clip."""
    iterations = GLASS_PARAMS[severity - 1][2]
    shifts = glass_blur_shifts(tf.shape(images)[0], iterations, seed)
    return glass_blur_with_shifts(images, severity, shifts)
