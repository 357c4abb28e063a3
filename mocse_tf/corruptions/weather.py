"""CIFAR-10-C weather corruptions (snow, frost, fog, spatter) as batched TF ops, with the generator's quirks.

Each public corruption draws its random fields with stateless ops and hands them to a `*_from_*` function that
does the deterministic rest, so tests can inject the same fields into a NumPy/OpenCV reference. Spatter's
OpenCV steps (Canny, distanceTransform, equalizeHist, filter2D, blur) are re-implemented here with OpenCV's
own arithmetic (integer Sobel and sector tests, float32 chamfer costs, rounding rules). Given the same random
draws, snow, fog, frost and spatter reproduce the generator's uint8 output (snow up to the motion blur's rare
off-by-one); see tests/corruptions/test_weather.py.
"""

import functools
import importlib.resources
import math

import numpy as np
import tensorflow as tf

from mocse_tf.corruptions import common, elastic, motion
from mocse_tf.errors import UsageError

SIZE = common.IMAGE_SIZE

# ---------------------------------------------------------------------------------------------------------
# Snow
# ---------------------------------------------------------------------------------------------------------

# (layer mean, layer std, layer zoom, threshold, motion radius, motion sigma, image blend weight) per severity.
SNOW_PARAMS = (
    (0.10, 0.2, 1.0, 0.60, 8, 3.0, 0.95),
    (0.10, 0.2, 1.0, 0.50, 10, 4.0, 0.90),
    (0.15, 0.3, 1.75, 0.55, 10, 4.0, 0.90),
    (0.25, 0.3, 2.25, 0.60, 12, 6.0, 0.85),
    (0.30, 0.3, 1.25, 0.65, 14, 12.0, 0.80),
)
SNOW_ANGLES = (-135.0, -45.0)


def clipped_zoom_matrix(zoom, size=SIZE):
    """[size, size] float64 matrix Z with Z @ a @ Z.T == the generator's `clipped_zoom(a, zoom)` (order 1).

    The generator crops the centred ceil(size / zoom) square, zooms it with scipy.ndimage.zoom (order 1,
    output side round(side * zoom), output sample o reads input coordinate o * (side - 1) / (out - 1)) and
    keeps `size` samples from (out - size) // 2.
    """
    side = int(math.ceil(size / zoom))
    top = (size - side) // 2
    out = int(round(side * zoom))
    trim = (out - size) // 2
    ratio = (side - 1) / (out - 1) if out > 1 else 0.0
    matrix = np.zeros((size, size), np.float64)
    for row, o in enumerate(range(trim, trim + size)):
        coordinate = o * ratio
        low = int(math.floor(coordinate))
        frac = coordinate - low
        matrix[row, top + low] += 1.0 - frac
        if frac > 0:
            matrix[row, top + low + 1] += frac
    return matrix


def snow_from_fields(images, severity, normal_field, angles):
    """Snow with the random draws given: normal_field [B, 32, 32] ~ N(0, 1), angles [B] in degrees."""
    mean, std, zoom, threshold, radius, sigma, blend = SNOW_PARAMS[severity - 1]
    layer = tf.cast(normal_field, tf.float64) * std + mean
    if zoom != 1:
        zoom_matrix = tf.constant(clipped_zoom_matrix(zoom))
        layer = tf.einsum("bik,jk->bij", tf.einsum("ik,bkj->bij", zoom_matrix, layer), zoom_matrix)
    layer = tf.where(layer < threshold, tf.zeros_like(layer), layer)
    # The layer goes through a grayscale PNG: clip, *255, truncate.
    layer_uint8 = tf.cast(tf.floor(tf.clip_by_value(layer, 0.0, 1.0) * 255.0), tf.uint8)[..., None]
    blurred = motion.imagemagick_motion_blur(layer_uint8, radius, sigma, angles, SNOW_ANGLES)
    snow_layer = tf.cast(blurred, tf.float64) / 255.0

    x = common.to_unit_float(images)  # float32, like the generator
    gray = x[..., 0:1] * 0.299 + x[..., 1:2] * 0.587 + x[..., 2:3] * 0.114  # OpenCV RGB2GRAY
    x = blend * x + (1.0 - blend) * tf.maximum(x, gray * 1.5 + 0.5)
    # The layer is added twice: as it is and turned by 180 degrees.
    return common.from_unit_float(tf.cast(x, tf.float64) + snow_layer + tf.reverse(snow_layer, axis=[1, 2]))


def snow(images, severity, seed):
    """CIFAR-10-C snow: a thresholded normal layer, motion-blurred (angle ~ U(-135, -45)), added twice."""
    field_seed, angle_seed = common.split_seed(seed, 2)
    batch = tf.shape(images)[0]
    field = tf.random.stateless_normal(tf.stack([batch, SIZE, SIZE]), field_seed, dtype=tf.float64)
    angles = tf.random.stateless_uniform(tf.reshape(batch, [1]), angle_seed, *SNOW_ANGLES, dtype=tf.float64)
    return snow_from_fields(images, severity, field, angles)


# ---------------------------------------------------------------------------------------------------------
# Frost
# ---------------------------------------------------------------------------------------------------------

# (image weight, frost weight) per severity.
FROST_PARAMS = ((1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))
# The generator lists frost6.jpg too, but its randint(5) can never pick it. (frost2.png and frost3.png hold the
# same RGB pixels, so in effect that texture is drawn with probability 2/5.)
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")


@functools.lru_cache(maxsize=1)
def frost_textures():
    """The five frost textures as the generator sees them: (uint8 [5, Hmax, Wmax, 3] RGB, int32 [5, 2] sizes).

    Read from the installed `imagecorruptions` package with OpenCV (BGR, alpha dropped), resized by 0.2 with
    OpenCV's default bilinear (at this factor every output pixel is the input pixel at 5 * i + 2), converted
    to RGB and zero-padded to a common size. Sizes (HxW): 120x180, 63x112, 63x112, 70x105, 99x132.
    """
    import cv2  # comes with imagecorruptions; only needed here, once

    textures = []
    for name in FROST_FILES:
        resource = importlib.resources.files("imagecorruptions") / "frost" / name
        with importlib.resources.as_file(resource) as path:
            bgr = cv2.imread(str(path))
        if bgr is None:
            raise UsageError(
                f"could not read the frost texture {name} from the installed imagecorruptions package; "
                "reinstall it with `pip install --force-reinstall imagecorruptions`"
            )
        textures.append(cv2.resize(bgr, (0, 0), fx=0.2, fy=0.2)[..., ::-1])
    sizes = np.array([t.shape[:2] for t in textures], np.int32)
    stack = np.zeros((len(textures), sizes[:, 0].max(), sizes[:, 1].max(), 3), np.uint8)
    for i, texture in enumerate(textures):
        stack[i, : texture.shape[0], : texture.shape[1]] = texture
    return stack, sizes


def frost_crops(batch, seed):
    """Random 32x32 frost crops, uint8 [B, 32, 32, 3]: texture ~ randint(5), top ~ randint(0, H - 32), left
    ~ randint(0, W - 32) (exclusive upper bounds, as NumPy draws them)."""
    stack, sizes = frost_textures()
    index_seed, top_seed, left_seed = common.split_seed(seed, 3)
    shape = tf.reshape(batch, [1])
    index = tf.random.stateless_uniform(shape, index_seed, 0, len(FROST_FILES), dtype=tf.int32)
    size = tf.gather(tf.constant(sizes), index)
    top = _uniform_int_below(shape, top_seed, size[:, 0] - SIZE)
    left = _uniform_int_below(shape, left_seed, size[:, 1] - SIZE)
    _, height, width, _ = stack.shape
    rows = top[:, None, None] + tf.range(SIZE)[None, :, None]
    cols = left[:, None, None] + tf.range(SIZE)[None, None, :]
    flat_index = (index[:, None, None] * height + rows) * width + cols
    return tf.gather(tf.constant(stack.reshape(-1, 3)), flat_index)


def _uniform_int_below(shape, seed, upper):
    """Integers uniform in [0, upper) with a per-element upper bound (int32 tensor)."""
    unit = tf.random.stateless_uniform(shape, seed, dtype=tf.float64)
    return tf.cast(tf.floor(unit * tf.cast(upper, tf.float64)), tf.int32)


def frost_from_crops(images, severity, crops):
    """clip(a * x + b * crop, 0, 255) on the 0..255 scale (float64 like the generator), truncated."""
    image_weight, frost_weight = FROST_PARAMS[severity - 1]
    out = image_weight * tf.cast(images, tf.float64) + frost_weight * tf.cast(crops, tf.float64)
    return common.from_pixel_float(out)


def frost(images, severity, seed):
    """CIFAR-10-C frost: blend with a random crop of one of the five frost textures."""
    return frost_from_crops(images, severity, frost_crops(tf.shape(images)[0], seed))


# ---------------------------------------------------------------------------------------------------------
# Fog
# ---------------------------------------------------------------------------------------------------------

# (strength t, fractal decay) per severity.
FOG_PARAMS = ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75))


def plasma_fractal(batch, decay, seed, mapsize=SIZE):
    """The generator's diamond-square plasma fractal, float64 [B, mapsize, mapsize] scaled to [0, 1].

    Corner value 0, neighbours wrap around (np.roll), start amplitude w = 100 divided by `decay` after each
    level, every new point = neighbour sum / 4 + w * U(-w, w) (so the noise amplitude is w squared). The
    known grid doubles per level: centres (squares), then the two diamond sets, interleaved.
    """
    levels = int(round(math.log2(mapsize)))
    seeds = common.split_seed(seed, 3 * levels)
    grid = tf.zeros(tf.stack([batch, 1, 1]), tf.float64)
    wibble = 100.0
    for level in range(levels):
        n = 2**level
        shape = tf.stack([batch, n, n])

        def wibbled_mean(total, seed_index, wibble=wibble, shape=shape):
            noise = tf.random.stateless_uniform(shape, seeds[seed_index], -wibble, wibble, dtype=tf.float64)
            return total / 4 + wibble * noise

        square_sum = grid + tf.roll(grid, -1, axis=1)
        square_sum = square_sum + tf.roll(square_sum, -1, axis=2)
        centres = wibbled_mean(square_sum, 3 * level)
        # Points between two grid points of a row (above/below: centres), then between two of a column.
        row_points = wibbled_mean(centres + tf.roll(centres, 1, axis=1) + grid + tf.roll(grid, -1, axis=2),
                                  3 * level + 1)
        col_points = wibbled_mean(centres + tf.roll(centres, 1, axis=2) + grid + tf.roll(grid, -1, axis=1),
                                  3 * level + 2)
        even_rows = tf.reshape(tf.stack([grid, row_points], axis=-1), tf.stack([batch, n, 2 * n]))
        odd_rows = tf.reshape(tf.stack([col_points, centres], axis=-1), tf.stack([batch, n, 2 * n]))
        grid = tf.reshape(tf.stack([even_rows, odd_rows], axis=2), tf.stack([batch, 2 * n, 2 * n]))
        wibble /= decay
    grid = grid - tf.reduce_min(grid, axis=[1, 2], keepdims=True)
    return grid / tf.reduce_max(grid, axis=[1, 2], keepdims=True)


def fog_from_fractal(images, severity, fractal):
    """clip((x + t * fractal) * M / (M + t), 0, 1) with M the image's max over pixels and channels."""
    strength, _ = FOG_PARAMS[severity - 1]
    x = common.to_unit_float(images, tf.float64)
    max_value = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    x = x + strength * tf.cast(fractal, tf.float64)[..., None]
    return common.from_unit_float(x * max_value / (max_value + strength))


def fog(images, severity, seed):
    """CIFAR-10-C fog: a plasma fractal (the same for all channels) added, then rescaled by M / (M + t)."""
    _, decay = FOG_PARAMS[severity - 1]
    return fog_from_fractal(images, severity, plasma_fractal(tf.shape(images)[0], decay, seed))


# ---------------------------------------------------------------------------------------------------------
# Spatter
# ---------------------------------------------------------------------------------------------------------

# (liquid mean, liquid std, liquid blur sigma, threshold, water intensity / mud blur sigma, mud?) per severity.
SPATTER_PARAMS = (
    (0.62, 0.1, 0.7, 0.70, 0.5, False),
    (0.65, 0.1, 0.8, 0.70, 0.5, False),
    (0.65, 0.3, 1.0, 0.69, 0.5, False),
    (0.65, 0.1, 0.7, 0.69, 0.6, True),
    (0.65, 0.1, 0.5, 0.68, 0.6, True),
)
WATER_COLOUR = (175.0, 238.0, 238.0)  # pale turquoise, RGB
MUD_COLOUR = (63.0, 42.0, 20.0)  # brown, RGB
EMBOSS_KERNEL = ((-2.0, -1.0, 0.0), (-1.0, 1.0, 1.0), (0.0, 1.0, 2.0))


def _pad(x, pad, mode):
    """Pads the two spatial axes of [B, H, W]: tf.pad modes (REFLECT is OpenCV's reflect-101, SYMMETRIC with
    pad 1 replicates the edge) or a constant value when `mode` is a number."""
    paddings = [[0, 0], [pad, pad], [pad, pad]]
    if isinstance(mode, str):
        return tf.pad(x, paddings, mode=mode)
    return tf.pad(x, paddings, constant_values=mode)


def _correlate_3x3(x, kernel, mode):
    """3x3 correlation of [B, H, W] (anchor at the centre, like OpenCV filter2D), borders as in `_pad`."""
    height, width = x.shape[1], x.shape[2]
    padded = _pad(x, 1, mode)
    out = None
    for row in range(3):
        for col in range(3):
            weight = kernel[row][col]
            if weight == 0:
                continue
            term = padded[:, row:row + height, col:col + width]
            term = term if weight == 1 else term * tf.constant(weight, x.dtype)
            out = term if out is None else out + term
    return out


def _box_sum_3x3(x):
    """3x3 sums of [B, H, W] with OpenCV's default border (reflect-101), in x's dtype."""
    return _correlate_3x3(x, np.ones((3, 3)), "REFLECT")


def canny(gray, low=50, high=150):
    """OpenCV `Canny(gray, low, high)` (aperture 3, L1 gradient) on [B, H, W] int32 (0..255) -> bool edges.

    Sobel with replicated borders; magnitude |dx| + |dy|; OpenCV's non-maximum suppression (fixed-point
    tan 22.5 sectors, its > / >= tie rules, zero magnitude outside the image); hysteresis: candidates
    (> low, not suppressed) 8-connected to a strong pixel (> high), grown by repeated 3x3 dilation.
    """
    dx = _correlate_3x3(gray, ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1)), "SYMMETRIC")
    dy = _correlate_3x3(gray, ((-1, -2, -1), (0, 0, 0), (1, 2, 1)), "SYMMETRIC")
    magnitude = tf.abs(dx) + tf.abs(dy)
    height, width = gray.shape[1], gray.shape[2]
    padded = _pad(magnitude, 1, 0)

    def neighbour(row, col):  # magnitude at (i + row, j + col), zero outside
        return padded[:, 1 + row:1 + row + height, 1 + col:1 + col + width]

    shift = 15
    tg22 = int(0.4142135623730950488016887242097 * (1 << shift) + 0.5)
    abs_x = tf.abs(dx)
    scaled_y = tf.abs(dy) * (1 << shift)
    tg22x = abs_x * tg22
    tg67x = tg22x + abs_x * (1 << (shift + 1))
    horizontal = (magnitude > neighbour(0, -1)) & (magnitude >= neighbour(0, 1))
    vertical = (magnitude > neighbour(-1, 0)) & (magnitude >= neighbour(1, 0))
    signs_differ = (dx < 0) != (dy < 0)
    diagonal = tf.where(
        signs_differ,
        (magnitude > neighbour(-1, 1)) & (magnitude > neighbour(1, -1)),
        (magnitude > neighbour(-1, -1)) & (magnitude > neighbour(1, 1)),
    )
    is_max = tf.where(scaled_y < tg22x, horizontal, tf.where(scaled_y > tg67x, vertical, diagonal))
    candidates = tf.cast(is_max & (magnitude > low), tf.float32)[..., None]
    strong = candidates * tf.cast(magnitude > high, tf.float32)[..., None]

    def grow(edges, _):
        grown = tf.nn.max_pool2d(edges, 3, 1, "SAME") * candidates
        return grown, tf.reduce_any(grown > edges)

    edges, _ = tf.while_loop(
        lambda edges, changed: changed, grow, (strong, tf.constant(True)), maximum_iterations=height * width
    )
    return edges[..., 0] > 0


# OpenCV distanceTransform(DIST_L2, 5) mask: axis, diagonal and knight-move costs (float32, as IPP uses them).
_AXIS_COST, _DIAGONAL_COST, _KNIGHT_COST = 1.0, float(np.float32(1.4)), float(np.float32(2.1969))
_FAR = 1.0e4  # "no zero pixel within reach"; everything above `truncate` ends up as `truncate` anyway


def _raster_pass(seeds, zeros):
    """One raster pass (top to bottom, left to right) of the 5x5 chamfer; seeds float32 [B, H, W].

    Each row first takes its candidates from the two rows above (knight, diagonal and axis moves, one float
    add each, like OpenCV), then the left-to-right scan t[j] = min(t[j], t[j-1] + 1), done by doubling.
    zeros (bool [B, H, W] or None) forces 0 where the source image is 0. Rows are visited with tf.scan.
    """
    width = seeds.shape[2]
    batch = tf.shape(seeds)[0]
    far_row = tf.fill(tf.stack([batch, width + 4]), _FAR)  # rows are kept padded by 2 columns of _FAR
    rows = tf.transpose(seeds, [1, 0, 2])
    zero_rows = tf.transpose(zeros, [1, 0, 2]) if zeros is not None else tf.zeros_like(rows, tf.bool)

    def next_row(state, inputs):
        above2, above1 = state
        seed, zero = inputs
        knight = tf.minimum(tf.minimum(above2[:, 1:width + 1], above2[:, 3:width + 3]),
                            tf.minimum(above1[:, 0:width], above1[:, 4:width + 4]))
        diagonal = tf.minimum(above1[:, 1:width + 1], above1[:, 3:width + 3])
        row = tf.minimum(tf.minimum(knight + _KNIGHT_COST, diagonal + _DIAGONAL_COST),
                         above1[:, 2:width + 2] + _AXIS_COST)
        row = tf.where(zero, tf.zeros_like(row), tf.minimum(row, seed))
        step = 1
        while step < width:
            shifted = tf.concat([far_row[:, :step], row[:, :-step]], axis=1)
            row = tf.minimum(row, shifted + step * _AXIS_COST)
            step *= 2
        return above1, tf.concat([far_row[:, :2], row, far_row[:, :2]], axis=1)

    _, padded_rows = tf.scan(next_row, (rows, zero_rows), initializer=(far_row, far_row))
    return tf.transpose(padded_rows[:, :, 2:width + 2], [1, 0, 2])


def chamfer_distance(zeros, truncate):
    """OpenCV `distanceTransform(src, DIST_L2, 5)` then `threshold(..., truncate, THRESH_TRUNC)`.

    zeros: bool [B, H, W], True where src == 0. OpenCV's two raster passes (forward, then backward over the
    image turned by 180 degrees, which maps the backward mask onto the forward one), vectorised over the
    batch and the columns; the in-row scan is done by doubling, so a float32 sum can differ from OpenCV's
    sequential one in its last bit (in the tests the result always equals OpenCV's).
    """
    seeds = tf.where(zeros, tf.zeros_like(zeros, tf.float32), tf.fill(tf.shape(zeros), _FAR))
    forward = _raster_pass(seeds, zeros)
    backward = _raster_pass(tf.reverse(forward, axis=[1, 2]), None)
    return tf.minimum(tf.reverse(backward, axis=[1, 2]), float(truncate))


def equalize_hist(values, levels):
    """OpenCV `equalizeHist` on [B, H, W] int32 images whose values lie in [0, levels); float32 out."""
    batch = tf.shape(values)[0]
    total = values.shape[1] * values.shape[2]
    flat = tf.reshape(values, tf.stack([batch, total])) + tf.range(batch)[:, None] * levels
    counts = tf.reshape(tf.math.bincount(flat, minlength=batch * levels, maxlength=batch * levels),
                        tf.stack([batch, levels]))
    cumulative = tf.cumsum(counts, axis=1)
    first = tf.argmax(counts > 0, axis=1, output_type=tf.int32)
    first_count = tf.gather(counts, first, batch_dims=1)
    # lut[i] = round(sum of counts in (first, i] * 255 / (total - count[first])), float32 like OpenCV.
    scale = 255.0 / tf.cast(tf.maximum(total - first_count, 1), tf.float32)
    lut = tf.round(tf.cast(cumulative - first_count[:, None], tf.float32) * scale[:, None])
    equalised = tf.gather(tf.clip_by_value(lut, 0.0, 255.0), values, batch_dims=1)
    # A constant image keeps its value (OpenCV sets it to that value).
    constant = (first_count == total)[:, None, None]
    return tf.where(constant, tf.cast(values, tf.float32), equalised)


def water_mask(liquid, intensity):
    """The water branch's m (before the colour): float32 [B, 32, 32] from the thresholded liquid layer."""
    # astype(np.uint8) on floats >= 256 wraps modulo 256 (the liquid can exceed 1.0 at severity 3).
    liquid_uint8 = tf.math.floormod(tf.floor(liquid * 255.0), 256.0)
    edges = canny(tf.cast(liquid_uint8, tf.int32))
    distance = chamfer_distance(edges, truncate=20)
    # cv2.blur on float32: 3x3 sum in double times 1/9, stored as float32; astype(uint8) truncates.
    blurred = tf.cast(_box_sum_3x3(tf.cast(distance, tf.float64)) * (1.0 / 9.0), tf.float32)
    equalised = equalize_hist(tf.cast(tf.floor(blurred), tf.int32), levels=21)
    embossed = tf.clip_by_value(_correlate_3x3(equalised, EMBOSS_KERNEL, "REFLECT"), 0.0, 255.0)  # CV_8U
    # cv2.blur on uint8 rounds the 3x3 mean to the nearest integer.
    smoothed = tf.floor(_box_sum_3x3(embossed) / 9.0 + 0.5)
    mask = tf.cast(liquid_uint8, tf.float32) * smoothed
    peak = tf.reduce_max(mask, axis=[1, 2], keepdims=True)
    # The generator divides by the peak; an all-zero mask (never seen) would give NaN there, zero here.
    return tf.math.divide_no_nan(mask, peak) * intensity


def spatter_from_field(images, severity, normal_field):
    """Spatter with the random draw given: normal_field [B, 32, 32] ~ N(0, 1)."""
    mean, std, blur_sigma, threshold, intensity, mud = SPATTER_PARAMS[severity - 1]
    x = common.to_unit_float(images)  # float32 like the generator
    liquid = tf.cast(normal_field, tf.float64) * std + mean
    liquid = elastic.smooth_fields(liquid, blur_sigma, "nearest")
    liquid = tf.where(liquid < threshold, tf.zeros_like(liquid), liquid)
    if not mud:
        mask = water_mask(liquid, intensity)[..., None]
        colour = tf.constant(np.array(WATER_COLOUR) / 255.0, tf.float32)
        return common.from_unit_float(x + mask * colour)
    mask = elastic.smooth_fields(tf.cast(liquid > threshold, tf.float32), intensity, "nearest")[..., None]
    mask = tf.where(mask < 0.8, tf.zeros_like(mask), mask)
    colour = tf.constant(np.array(MUD_COLOUR) / 255.0, tf.float32)
    return common.from_unit_float(x * (1.0 - mask) + colour * mask)


def spatter(images, severity, seed):
    """CIFAR-10-C spatter: water drops (severities 1-3) or mud (4-5) from a blurred, thresholded normal layer."""
    batch = tf.shape(images)[0]
    field = tf.random.stateless_normal(tf.stack([batch, SIZE, SIZE]), common.as_seed(seed), dtype=tf.float64)
    return spatter_from_field(images, severity, field)
