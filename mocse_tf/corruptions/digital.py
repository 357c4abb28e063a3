"""The CIFAR-10-C digital corruptions: brightness, contrast, saturate, JPEG compression and pixelate.

Colour work copies scikit-image's rgb2hsv / hsv2rgb operation by operation in float64; pixelate copies
Pillow's fixed-point BOX resampling; JPEG uses libjpeg through tf.io with the decoder settings Pillow uses.
"""

import numpy as np
import tensorflow as tf

from mocse_tf.corruptions import common

BRIGHTNESS_SHIFTS = (0.05, 0.1, 0.15, 0.2, 0.3)
CONTRAST_FACTORS = (0.75, 0.5, 0.4, 0.3, 0.15)
SATURATE_PARAMS = ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2))  # (multiplier, addend)
JPEG_QUALITIES = (80, 65, 58, 50, 40)
PIXELATE_SCALES = (0.95, 0.9, 0.85, 0.75, 0.65)


# --- HSV, as scikit-image computes it -----------------------------------------------------------------------


def rgb_to_hsv(rgb):
    """scikit-image `rgb2hsv` on [..., 3] float64 in [0, 1], as three planes (hue, saturation, value).

    The same floating-point operations on every element as scikit-image, with its tie-breaking (a later case
    overwrites an earlier one: blue max beats green max beats red max) and its zeros for grey pixels.
    Choosing the numerator before the one division gives the same values as dividing in every case.
    """
    red, green, blue = tf.unstack(rgb, axis=-1)
    value = tf.maximum(tf.maximum(red, green), blue)
    delta = value - tf.minimum(tf.minimum(red, green), blue)
    grey = tf.equal(delta, 0.0)
    ones = tf.ones_like(delta)
    saturation = tf.where(grey, tf.zeros_like(delta), delta / tf.where(grey, ones, value))
    blue_max, green_max = tf.equal(blue, value), tf.equal(green, value)
    numerator = tf.where(blue_max, red - green, tf.where(green_max, blue - red, green - blue))
    offset = tf.where(blue_max, 4.0 * ones, tf.where(green_max, 2.0 * ones, 0.0 * ones))
    hue = offset + numerator / tf.where(grey, ones, delta)  # 0 + y == y, so the red case is unchanged
    hue = tf.math.floormod(common.divide(hue, 6.0), 1.0)  # NumPy's % on floats is a floor modulo
    hue = tf.where(grey, tf.zeros_like(hue), hue)
    return hue, saturation, value


def hsv_to_rgb(hue, saturation, value):
    """scikit-image `hsv2rgb` of three planes -> [..., 3]: sector floor(6 h) modulo 6 picks among v, p, q, t."""
    sector = tf.floor(hue * 6.0)
    frac = hue * 6.0 - sector
    p = value * (1.0 - saturation)
    q = value * (1.0 - frac * saturation)
    t = value * (1.0 - (1.0 - frac) * saturation)
    sector = tf.where(tf.equal(sector, 6.0), tf.zeros_like(sector), sector)  # h * 6 may round up to 6
    s0, s1, s2, s3, s4, s5 = (tf.equal(sector, float(k)) for k in range(6))
    # Sector:   0  1  2  3  4  5
    # red:      v  q  p  p  t  v
    # green:    t  v  v  q  p  p
    # blue:     p  p  t  v  v  q
    red = tf.where(s1, q, tf.where(s2 | s3, p, tf.where(s4, t, value)))
    green = tf.where(s0, t, tf.where(s3, q, tf.where(s4 | s5, p, value)))
    blue = tf.where(s0 | s1, p, tf.where(s2, t, tf.where(s5, q, value)))
    return tf.stack([red, green, blue], axis=-1)


def brightness(images, severity, seed=None):
    """V <- clip(V + c, 0, 1) in scikit-image HSV (float64), back to RGB, clip."""
    del seed  # deterministic
    shift = BRIGHTNESS_SHIFTS[severity - 1]
    hue, saturation, value = rgb_to_hsv(common.to_unit_float(images, tf.float64))
    value = tf.clip_by_value(value + shift, 0.0, 1.0)
    return common.from_unit_float(hsv_to_rgb(hue, saturation, value))


def saturate(images, severity, seed=None):
    """S <- clip(S * mult + add, 0, 1) in scikit-image HSV (float64), back to RGB, clip."""
    del seed  # deterministic
    multiplier, addend = SATURATE_PARAMS[severity - 1]
    hue, saturation, value = rgb_to_hsv(common.to_unit_float(images, tf.float64))
    saturation = tf.clip_by_value(saturation * multiplier + addend, 0.0, 1.0)
    return common.from_unit_float(hsv_to_rgb(hue, saturation, value))


def contrast(images, severity, seed=None):
    """(x - m) * c + m with m the per-image, per-channel mean of x / 255 (float64), clip."""
    del seed  # deterministic
    factor = CONTRAST_FACTORS[severity - 1]
    x = common.to_unit_float(images, tf.float64)
    means = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    return common.from_unit_float((x - means) * factor + means)


# --- JPEG ---------------------------------------------------------------------------------------------------


def jpeg_compression(images, severity, seed=None):
    """Baseline JPEG at the severity's quality with 4:2:0 chroma (Pillow's defaults), decoded with the
    accurate integer IDCT and fancy upsampling (Pillow's, and libjpeg's, defaults; TF's default IDCT is the
    fast one, which changes about 65% of the pixels by up to 5 levels)."""
    del seed  # deterministic for a given libjpeg
    quality = JPEG_QUALITIES[severity - 1]

    def round_trip(image):
        encoded = tf.io.encode_jpeg(image, format="rgb", quality=quality, chroma_downsampling=True)
        return tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE")

    spec = tf.TensorSpec([common.IMAGE_SIZE, common.IMAGE_SIZE, common.CHANNELS], tf.uint8)
    return tf.map_fn(round_trip, images, fn_output_signature=spec)


# --- pixelate (Pillow BOX resampling) ------------------------------------------------------------------------

_PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed-point precision for 8-bit images


def pillow_box_matrix(in_size, out_size):
    """[out_size, in_size] integer weights of Pillow's BOX resampling along one axis, in fixed point.

    Copies Pillow's `precompute_coeffs` (support 0.5 scaled by the downscale factor, box weights normalised
    per output sample in double) and `normalize_coeffs_8bpc` (weights x 2^22 rounded half away from zero).
    """
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = 0.5 * filter_scale
    matrix = np.zeros((out_size, in_size), np.int64)
    for out_index in range(out_size):
        centre = (out_index + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), in_size)
        taps = np.arange(first, last)
        arg = (taps - centre + 0.5) * (1.0 / filter_scale)
        weights = np.where((arg > -0.5) & (arg <= 0.5), 1.0, 0.0)
        total = 0.0
        for w in weights:  # sequential sum, as Pillow's C loop
            total += w
        if total != 0.0:
            weights = weights / total
        scaled = weights * (1 << _PRECISION_BITS)
        fixed = [int(-0.5 + w) if w < 0 else int(0.5 + w) for w in scaled]
        matrix[out_index, first:last] = fixed
    return matrix


def _pillow_pass(pixels, matrix, axis):
    """One 8-bit Pillow resampling pass along `axis` (1 = rows, 2 = columns) of [B, H, W, C] float64 pixels:
    integer sum + 2^21, arithmetic shift by 22, clip to 0..255. Exact in float64 (sums stay below 2^31)."""
    batch = tf.shape(pixels)[0]
    height, width, channels = pixels.shape[1], pixels.shape[2], pixels.shape[3]
    weights = tf.constant(matrix, tf.float64)
    if axis == 2:  # [out, W] @ [B * H, W, C]
        acc = tf.matmul(weights, tf.reshape(pixels, [-1, width, channels]))
        shape = tf.stack([batch, height, matrix.shape[0], channels])
    else:  # [out, H] @ [B, H, W * C]
        acc = tf.matmul(weights, tf.reshape(pixels, [-1, height, width * channels]))
        shape = tf.stack([batch, matrix.shape[0], width, channels])
    shifted = tf.floor((acc + float(1 << (_PRECISION_BITS - 1))) * (1.0 / (1 << _PRECISION_BITS)))
    return tf.reshape(tf.clip_by_value(shifted, 0.0, 255.0), shape)


def pillow_box_resize(pixels, out_height, out_width):
    """Pillow `Image.resize((out_width, out_height), BOX)` of [B, H, W, C] float64 integer-valued pixels.

    Horizontal pass first, its 8-bit result feeds the vertical pass (each pass rounds to uint8)."""
    height, width = pixels.shape[1], pixels.shape[2]
    if out_width != width:
        pixels = _pillow_pass(pixels, pillow_box_matrix(width, out_width), axis=2)
    if out_height != height:
        pixels = _pillow_pass(pixels, pillow_box_matrix(height, out_height), axis=1)
    return pixels


def pixelate(images, severity, seed=None):
    """Pillow BOX resize to int(32 * scale) pixels and BOX resize back to 32 (uint8 between the passes)."""
    del seed  # deterministic
    small = int(common.IMAGE_SIZE * PIXELATE_SCALES[severity - 1])
    pixels = tf.cast(images, tf.float64)
    pixels = pillow_box_resize(pixels, small, small)
    pixels = pillow_box_resize(pixels, common.IMAGE_SIZE, common.IMAGE_SIZE)
    return tf.cast(pixels, tf.uint8)

