"""Training augmentation policies ("none", "standard", "augmented") as batched ops on uint8 images.

No policy may use any of the CIFAR-10-C corruptions the models are later tested on: the "augmented" policy is
RandAugment restricted to geometric and tone-mapping ops that are not benchmark corruptions (see
`describe_policy` for the exact text the README quotes, and `FORBIDDEN_LAYER_TYPES` for what is excluded).
"""

import keras
import tensorflow as tf

from mocse_tf.errors import check_choice

AUGMENT_POLICIES = ("none", "standard", "augmented")

IMAGE_SIZE = 32
PAD_PX = 4  # torchvision RandomCrop(32, padding=4): zero padding, then a random 32x32 window
CUTOUT_SIZE_PX = 16  # DeVries & Taylor 2017, the CIFAR-10 setting

# RandAugment (Cubuk et al. 2020) as used here: each image gets RANDAUGMENT_NUM_OPS different ops drawn uniformly
# from the op table below (identity included, as in the paper), applied in table order. Magnitudes are half the
# paper's maxima (rotate 30 deg, shear 0.3, translate 0.45 of the side), like keras.layers.RandAugment's
# default factor=0.5; shear and translate act on both axes at once, as in keras.layers.RandAugment.
RANDAUGMENT_NUM_OPS = 2
ROTATE_MAX_DEGREES = 15.0
SHEAR_MAX = 0.15
TRANSLATE_MAX_FRACTION = 0.15
POSTERIZE_BITS = (4, 8)  # bits kept, drawn from [4, 8): 4, 5, 6 or 7
SOLARIZE_THRESHOLD = (0.0, 1.0)  # threshold drawn uniformly in [0, 255]; pixels >= it are inverted

# Keras preprocessing layers that ARE (or contain) a CIFAR-10-C corruption, or an extra/hold-out corruption of
# the 19-corruption set, so they must never appear in a training policy:
#   RandomBrightness, AutoContrast, RandomContrast, Equalization, ContrastLimitedAdaptiveHistogramEqualization,
#   RandomColorJitter: brightness/contrast changes (equalization and auto-contrast remap the tone curve);
#   RandomGaussianBlur, RandomSharpness (its factor < 1 blends towards a blurred copy), RandomZoom (zoom blur's
#   ingredient): blurs; GaussianNoise, GaussianDropout, RandomErasing (fills with Gaussian noise by default):
#   noise; RandomElasticTransform: elastic; RandomColorDegeneration, RandomSaturation, RandomGrayscale:
#   saturate; RandAugment and AugMix: they contain brightness and contrast among their ops.
FORBIDDEN_LAYER_TYPES = (
    "RandomBrightness",
    "AutoContrast",
    "RandomContrast",
    "Equalization",
    "ContrastLimitedAdaptiveHistogramEqualization",
    "RandomColorJitter",
    "RandomGaussianBlur",
    "RandomSharpness",
    "RandomZoom",
    "GaussianNoise",
    "GaussianDropout",
    "RandomErasing",
    "RandomElasticTransform",
    "RandomColorDegeneration",
    "RandomSaturation",
    "RandomGrayscale",
    "RandAugment",
    "AugMix",
)

_CROP_FLIP_TEXT = (
    f"zero-pad {PAD_PX} px on each side (40x40), take a random 32x32 crop (9x9 offsets, uniform), "
    "flip left-right with probability 0.5 (as torchvision RandomCrop(32, padding=4) + RandomHorizontalFlip)"
)
_POLICY_TEXT = {
    "none": "none: images are used as they are (no augmentation).",
    "standard": f"standard: {_CROP_FLIP_TEXT}.",
    "augmented": (
        f"augmented (the paper's 'CIFAR-10 Augmented' variant): {_CROP_FLIP_TEXT}; then RandAugment: each image gets "
        f"{RANDAUGMENT_NUM_OPS} different ops, drawn uniformly per image from a table of 6 and applied in table "
        "order: identity; "
        f"rotate by U(-{ROTATE_MAX_DEGREES:g}, {ROTATE_MAX_DEGREES:g}) degrees (keras.layers.RandomRotation); "
        f"shear along x and y by s*U(0, {SHEAR_MAX:g}) each, one random sign s (keras.layers.RandomShear); "
        f"translate along x and y by U(-{TRANSLATE_MAX_FRACTION:g}, {TRANSLATE_MAX_FRACTION:g}) of the side each "
        "(keras.layers.RandomTranslation); "
        f"posterize to {POSTERIZE_BITS[0]}-{POSTERIZE_BITS[1] - 1} bits per channel "
        "(keras.layers.RandomPosterization); "
        "solarize: invert pixels at or above a threshold drawn from U(0, 255), no brightness offset "
        "(keras.layers.Solarization, addition_factor=0). "
        "Geometric ops use nearest-neighbour sampling (bilinear resampling low-pass filters, i.e. blurs) and fill "
        "uncovered pixels with 0, like the crop padding. "
        f"Then cutout: one {CUTOUT_SIZE_PX}x{CUTOUT_SIZE_PX} square, centred on a uniformly drawn pixel and clipped "
        "at the border, set to 0 (DeVries & Taylor 2017). "
        "Excluded on purpose, because they are CIFAR-10-C corruptions or close to them: brightness, contrast, "
        "auto-contrast, equalize, color (saturation), sharpness (blurs when below 1), any blur, noise, zoom, "
        "elastic warps, pixelation and JPEG."
    ),
}


def check_policy(name):
    """Raises UsageError unless `name` is one of AUGMENT_POLICIES."""
    check_choice("augmentation policy", name, AUGMENT_POLICIES)


def describe_policy(name):
    """The exact policy, in words: what README quotes and what a run records."""
    check_policy(name)
    return _POLICY_TEXT[name]


class BatchAugmenter:
    """Applies one policy to a batch: `augmenter(images uint8 [B, 32, 32, 3], seed int [2]) -> uint8 images`.

    Crop, flip, op choice and cutout draw from stateless ops keyed by `seed` (one per batch, from the pipeline).
    The Keras layers draw their magnitudes from their own seed generators, seeded from `layer_seed`: they are
    deterministic as long as batches pass through them in order (the pipeline maps them sequentially).
    """

    def __init__(self, policy, layer_seed=0):
        check_policy(policy)
        self.policy = policy
        self.randaugment_ops = _randaugment_ops(layer_seed) if policy == "augmented" else {}

    @property
    def keras_layers(self):
        """Every Keras preprocessing layer this policy calls (what the forbidden-op test inspects)."""
        return [op for op in self.randaugment_ops.values() if isinstance(op, keras.layers.Layer)]

    def __call__(self, images, seed):
        if self.policy == "none":
            return images
        crop_seed, randaugment_seed, cutout_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        images = pad_crop_flip(images, crop_seed)
        if self.policy == "standard":
            return images
        images = self._randaugment(images, randaugment_seed)
        return cutout(images, cutout_seed)

    def _randaugment(self, images, seed):
        batch_size = tf.shape(images)[0]
        ops = list(self.randaugment_ops.values())
        # The NUM_OPS smallest of K uniform keys pick NUM_OPS distinct ops per image, all equally likely.
        keys = tf.random.stateless_uniform([batch_size, len(ops)], seed)
        chosen = tf.argsort(tf.argsort(keys, axis=1), axis=1) < RANDAUGMENT_NUM_OPS  # [B, K]
        pixels = tf.cast(images, tf.float32)
        for index, op in enumerate(ops):
            if op is tf.identity:
                continue
            # Each op runs once, vectorised, on just the images that drew it: a per-image op choice
            # (keras.layers.RandAugment draws one op per batch) for the work of NUM_OPS ops per image.
            drew = tf.where(chosen[:, index])  # [M, 1] image indices
            pixels = tf.tensor_scatter_nd_update(pixels, drew, op(tf.gather_nd(pixels, drew)))
        return tf.saturate_cast(tf.round(pixels), tf.uint8)


def pad_crop_flip(images, seed):
    """Zero-pads PAD_PX on each side, crops a random 32x32 window and flips left-right with probability 0.5."""
    batch_size = tf.shape(images)[0]
    offset_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    offsets = tf.random.stateless_uniform([batch_size, 2], offset_seed, 0, 2 * PAD_PX + 1, dtype=tf.int32)
    flip = tf.random.stateless_uniform([batch_size], flip_seed, 0, 2, dtype=tf.int32) > 0
    padded = tf.pad(images, [[0, 0], [PAD_PX, PAD_PX], [PAD_PX, PAD_PX], [0, 0]])
    steps = tf.range(IMAGE_SIZE)
    rows = offsets[:, :1] + steps  # [B, 32]
    # A flipped crop reads its columns right to left: crop and flip become one gather.
    cols = offsets[:, 1:] + tf.where(flip[:, None], IMAGE_SIZE - 1 - steps, steps)
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)  # [B, 32, 40, 3]
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def cutout(images, seed):
    """Sets one CUTOUT_SIZE_PX square per image to 0, centred on a uniform pixel and clipped at the border."""
    batch_size = tf.shape(images)[0]
    centres = tf.random.stateless_uniform([batch_size, 2], seed, 0, IMAGE_SIZE, dtype=tf.int32)
    steps = tf.range(IMAGE_SIZE)
    half = CUTOUT_SIZE_PX // 2
    row_hit = (steps[None, :] >= centres[:, :1] - half) & (steps[None, :] < centres[:, :1] + half)  # [B, 32]
    col_hit = (steps[None, :] >= centres[:, 1:] - half) & (steps[None, :] < centres[:, 1:] + half)
    erased = row_hit[:, :, None, None] & col_hit[:, None, :, None]
    return tf.where(erased, tf.zeros_like(images), images)


def _randaugment_ops(seed):
    """The op table of the augmented policy; each Keras layer gets its own seed so their draws are independent."""
    geometry = dict(interpolation="nearest", fill_mode="constant", fill_value=0.0, dtype="float32")
    return {
        "identity": tf.identity,
        "rotate": keras.layers.RandomRotation(ROTATE_MAX_DEGREES / 360.0, seed=seed + 1, **geometry),
        "shear": keras.layers.RandomShear(x_factor=SHEAR_MAX, y_factor=SHEAR_MAX, seed=seed + 2, **geometry),
        "translate": keras.layers.RandomTranslation(
            TRANSLATE_MAX_FRACTION, TRANSLATE_MAX_FRACTION, seed=seed + 3, **geometry
        ),
        "posterize": keras.layers.RandomPosterization(
            POSTERIZE_BITS, value_range=(0, 255), seed=seed + 4, dtype="float32"
        ),
        "solarize": keras.layers.Solarization(
            addition_factor=0.0, threshold_factor=SOLARIZE_THRESHOLD, value_range=(0, 255), seed=seed + 5,
            dtype="float32",
        ),
    }
