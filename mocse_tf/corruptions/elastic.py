"""CIFAR-10-C elastic_transform (tfds: elastic) as batched TF ops: random affine warp, then smooth displacement.

Steps as in the generator (float32 images): a random affine from three jittered point pairs, applied like
OpenCV `warpAffine` (bilinear, BORDER_REFLECT_101, with the 1/32-pixel fixed-point coordinates of the
OpenCV releases that made the data: 3.x-4.10; OpenCV >= 4.11 interpolates at exact coordinates, at most
~0.01 apart); then displacement fields dx, dy = gaussian(U(-1, 1), sigma, mode 'reflect', truncate 3) *
alpha, resampled bilinearly at (row + dy, col + dx) like `scipy.ndimage.map_coordinates(order=1,
mode='reflect')`.
"""

import numpy as np
import tensorflow as tf

from mocse_tf.corruptions import common, filters

SIZE = common.IMAGE_SIZE

# (displacement scale alpha, displacement smoothing sigma, affine jitter in pixels) per severity, written as
# the generator computes them (32 * fraction) so the floats are identical.
ELASTIC_PARAMS = (
    (SIZE * 0, SIZE * 0, SIZE * 0.08),
    (SIZE * 0.05, SIZE * 0.2, SIZE * 0.07),
    (SIZE * 0.08, SIZE * 0.06, SIZE * 0.06),
    (SIZE * 0.1, SIZE * 0.04, SIZE * 0.05),
    (SIZE * 0.1, SIZE * 0.03, SIZE * 0.03),
)
# Source points (x, y): centre 16 +- 32 // 3.
SOURCE_POINTS = np.float32([[26, 26], [26, 6], [6, 6]])

# OpenCV warpAffine fixed point: coordinates * 1024 rounded, then 5 fractional bits (1/32 pixel).
_AB_SCALE = 1024.0
_INTER_TAB_SIZE = 32


def _reflect_101(index, size):
    """OpenCV BORDER_REFLECT_101 (SciPy 'mirror') for integer tensors of any range."""
    period = 2 * size - 2
    index = tf.math.floormod(index, period)
    return tf.where(index >= size, period - index, index)


def _reflect(index, size):
    """SciPy 'reflect' (half-sample symmetric) for integer tensors of any range."""
    period = 2 * size
    index = tf.math.floormod(index, period)
    return tf.where(index >= size, period - 1 - index, index)


def _gather_pixels(images, rows, cols):
    """images [B, H, W, C]; rows, cols int32 [B, H, W] (in range) -> [B, H, W, C]."""
    batch = tf.shape(images)[0]
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    flat = tf.reshape(images, tf.stack([batch, height * width, channels]))
    index = tf.reshape(rows * width + cols, tf.stack([batch, height * width]))
    return tf.reshape(tf.gather(flat, index, batch_dims=1), tf.shape(images))


def inverse_affine(destination_points):
    """The 2x3 affine (float64 [B, 2, 3]) that maps destination_points [B, 3, 2] (x, y) onto SOURCE_POINTS.

    This is the map warpAffine uses: it inverts getAffineTransform(SOURCE_POINTS, destination_points).
    """
    points = tf.cast(destination_points, tf.float64)
    ones = tf.ones_like(points[:, :, :1])
    homogeneous = tf.concat([points, ones], axis=2)  # [B, 3, 3]: rows (x, y, 1)
    source = tf.broadcast_to(tf.constant(SOURCE_POINTS, tf.float64), tf.shape(points))
    # homogeneous @ M^T = source
    return tf.linalg.matrix_transpose(tf.linalg.solve(homogeneous, source))


def warp_affine(images, inverse):
    """OpenCV warpAffine(images, M, INTER_LINEAR, BORDER_REFLECT_101) given M's inverse [B, 2, 3] (float64).

    float32 [B, H, W, C] in and out; OpenCV 3.x-4.10 fixed-point coordinates (1/32 pixel) and float32
    weights from its interpolation table.
    """
    height, width = images.shape[1], images.shape[2]
    cols = tf.range(width, dtype=tf.float64)[None, None, :]
    rows = tf.range(height, dtype=tf.float64)[None, :, None]
    m = inverse[:, :, :, None, None]  # [B, 2, 3, 1, 1]

    def fixed(k):  # row k of the inverse map -> coordinate in 1/32 pixels, [B, H, W] float64 integers
        per_col = tf.round(m[:, k, 0] * cols * _AB_SCALE)
        per_row = tf.round((m[:, k, 1] * rows + m[:, k, 2]) * _AB_SCALE) + _AB_SCALE / _INTER_TAB_SIZE / 2
        return tf.floor((per_col + per_row) / (_AB_SCALE / _INTER_TAB_SIZE))

    x_fixed, y_fixed = fixed(0), fixed(1)
    x0 = tf.floor(x_fixed / _INTER_TAB_SIZE)
    y0 = tf.floor(y_fixed / _INTER_TAB_SIZE)
    fx = tf.cast(x_fixed - x0 * _INTER_TAB_SIZE, tf.float32) / _INTER_TAB_SIZE
    fy = tf.cast(y_fixed - y0 * _INTER_TAB_SIZE, tf.float32) / _INTER_TAB_SIZE
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    c0, c1 = _reflect_101(x0, width), _reflect_101(x0 + 1, width)
    r0, r1 = _reflect_101(y0, height), _reflect_101(y0 + 1, height)
    fx, fy = fx[..., None], fy[..., None]
    out = _gather_pixels(images, r0, c0) * ((1.0 - fy) * (1.0 - fx))
    out = out + _gather_pixels(images, r0, c1) * ((1.0 - fy) * fx)
    out = out + _gather_pixels(images, r1, c0) * (fy * (1.0 - fx))
    return out + _gather_pixels(images, r1, c1) * (fy * fx)


def map_coordinates_bilinear(images, row_shift, col_shift):
    """scipy map_coordinates(order=1, mode='reflect') at (row + row_shift, col + col_shift), per channel.

    images float32 [B, H, W, C]; shifts float32 [B, H, W]. Interpolates in float64, returns float32.
    """
    height, width = images.shape[1], images.shape[2]
    rows = tf.range(height, dtype=tf.float64)[None, :, None] + tf.cast(row_shift, tf.float64)
    cols = tf.range(width, dtype=tf.float64)[None, None, :] + tf.cast(col_shift, tf.float64)
    row_floor, col_floor = tf.floor(rows), tf.floor(cols)
    fy, fx = (rows - row_floor)[..., None], (cols - col_floor)[..., None]
    row_floor, col_floor = tf.cast(row_floor, tf.int32), tf.cast(col_floor, tf.int32)
    r0, r1 = _reflect(row_floor, height), _reflect(row_floor + 1, height)
    c0, c1 = _reflect(col_floor, width), _reflect(col_floor + 1, width)

    def corner(rows, cols):
        return tf.cast(_gather_pixels(images, rows, cols), tf.float64)

    out = corner(r0, c0) * ((1.0 - fy) * (1.0 - fx))
    out = out + corner(r0, c1) * ((1.0 - fy) * fx)
    out = out + corner(r1, c0) * (fy * (1.0 - fx))
    out = out + corner(r1, c1) * (fy * fx)
    return tf.cast(out, tf.float32)


def gaussian_matrix(size, sigma, mode, truncate=4.0):
    """[size, size] float64 G with G @ v == scipy.ndimage.gaussian_filter1d(v, sigma, mode=mode, truncate=truncate).

    Smoothing a 32x32 field as G @ f @ G.T is two tiny matmuls instead of dozens of shifted adds; it agrees
    with SciPy's filter to float64 rounding (SciPy sums the taps in another order). Spatter uses it too.
    """
    weights = filters.gaussian_kernel_1d(sigma, truncate)
    radius = len(weights) // 2
    source = filters.border_indices(size, radius, radius, mode)
    matrix = np.zeros((size, size), np.float64)
    for row in range(size):
        np.add.at(matrix[row], source[row:row + 2 * radius + 1], weights)
    return matrix


def smooth_fields(fields, sigma, mode, truncate=4.0):
    """Gaussian filter of [B, H, W] fields along both axes (rows, then columns), like scikit-image `gaussian`.

    float64 fields are filtered in float64; float32 fields are rounded to float32 after each axis, as SciPy
    does when it writes each pass into a float32 output.
    """
    height, width = fields.shape[1], fields.shape[2]
    rows = tf.constant(gaussian_matrix(height, sigma, mode, truncate))
    cols = tf.constant(gaussian_matrix(width, sigma, mode, truncate))
    dtype = fields.dtype
    out = tf.einsum("ik,bkj->bij", rows, tf.cast(fields, tf.float64))
    out = tf.cast(tf.cast(out, dtype), tf.float64)
    out = tf.einsum("bik,jk->bij", out, cols)
    return tf.cast(out, dtype)


def elastic_from_fields(images, severity, jitter, field_x, field_y):
    """Elastic transform with the random draws given.

    jitter: [B, 3, 2] point offsets in pixels (U(-j, j) for this severity's j); field_x, field_y:
    [B, 32, 32] ~ U(-1, 1), smoothed into the column and row displacements.
    """
    alpha, sigma, _ = ELASTIC_PARAMS[severity - 1]
    x = common.to_unit_float(images)
    destination = tf.constant(SOURCE_POINTS) + tf.cast(jitter, tf.float32)  # float32 like the generator
    x = warp_affine(x, inverse_affine(destination))
    if alpha > 0:
        def displacement(field):
            return tf.cast(smooth_fields(tf.cast(field, tf.float64), sigma, "reflect", 3.0) * alpha, tf.float32)

        x = map_coordinates_bilinear(x, displacement(field_y), displacement(field_x))
    return common.from_unit_float(x)


def elastic_transform(images, severity, seed):
    """CIFAR-10-C elastic_transform: affine jitter shrinking with severity plus growing local displacement."""
    _, _, jitter_scale = ELASTIC_PARAMS[severity - 1]
    jitter_seed, x_seed, y_seed = common.split_seed(seed, 3)
    batch = tf.shape(images)[0]
    jitter = tf.random.stateless_uniform(
        tf.stack([batch, 3, 2]), jitter_seed, -jitter_scale, jitter_scale, dtype=tf.float64
    )
    field_shape = tf.stack([batch, SIZE, SIZE])
    field_x = tf.random.stateless_uniform(field_shape, x_seed, -1.0, 1.0, dtype=tf.float64)
    field_y = tf.random.stateless_uniform(field_shape, y_seed, -1.0, 1.0, dtype=tf.float64)
    return elastic_from_fields(images, severity, jitter, field_x, field_y)
