"""Names, groups and dispatch of the 19 CIFAR-10-C corruptions (tfds `cifar10_corrupted` names).

The generator's own names (`glass_blur`, `elastic_transform`) are accepted as aliases; `GENERATOR_NAMES` maps
each public name to the file name the released data uses (`<generator name>.npy`).
"""

import numpy as np
import tensorflow as tf

from mocse_tf.corruptions import blur, common, digital, noise
from mocse_tf.corruptions.elastic import elastic_transform
from mocse_tf.corruptions.motion import motion_blur
from mocse_tf.corruptions.weather import fog, frost, snow, spatter
from mocse_tf.errors import UsageError

# The official order, which is also the generator's order of processing: name -> fn(images, severity, seed).
_FUNCTIONS = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "defocus_blur": blur.defocus_blur,
    "frosted_glass_blur": blur.frosted_glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": blur.zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": digital.brightness,
    "contrast": digital.contrast,
    "elastic": elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
    "speckle_noise": noise.speckle_noise,
    "gaussian_blur": blur.gaussian_blur,
    "spatter": spatter,
    "saturate": digital.saturate,
}
ALL = tuple(_FUNCTIONS)
BENCHMARK = ALL[:15]  # the 15 corruptions of the benchmark (mCE)
EXTRA = ALL[15:]  # the 4 held-out corruptions, meant for validation and tuning only

# The paper's Table 1 rows.
DISPLAY_GROUPS = {
    "Noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "Blur": ("defocus_blur", "frosted_glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
    "Weather": ("snow", "frost", "fog", "spatter"),
    "Digital": ("brightness", "contrast", "elastic", "pixelate", "jpeg_compression", "saturate"),
}

# Public (tfds) name -> the generator's function name, which is also the released file name without `.npy`.
GENERATOR_NAMES = {name: name for name in ALL}
GENERATOR_NAMES.update({"frosted_glass_blur": "glass_blur", "elastic": "elastic_transform"})
ALIASES = {generator: public for public, generator in GENERATOR_NAMES.items() if generator != public}

# Corruptions whose output depends only on the input image (they ignore the seed).
DETERMINISTIC = frozenset(
    ("defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression", "gaussian_blur", "saturate")
)

SEVERITIES = (1, 2, 3, 4, 5)


def canonical_name(name):
    """The public (tfds) name of a corruption, given a public name or a generator alias; UsageError otherwise."""
    if isinstance(name, str):
        key = name.strip().lower()
        if key in _FUNCTIONS:
            return key
        if key in ALIASES:
            return ALIASES[key]
    raise UsageError(
        f"unknown corruption {name!r}; expected one of: {', '.join(ALL)} "
        f"(aliases: {', '.join(f'{a} = {p}' for a, p in ALIASES.items())})"
    )


def validate_severity(severity):
    """The severity as a Python int in 1..5 (it selects parameters at trace time); UsageError otherwise."""
    if isinstance(severity, (bool, np.bool_)) or not isinstance(severity, (int, np.integer)):
        raise UsageError(
            f"severity must be a Python int from 1 to 5 (it selects the parameters when the graph is built); "
            f"received {severity!r} of type {type(severity).__name__}"
        )
    if int(severity) not in SEVERITIES:
        raise UsageError(f"severity must be an integer from 1 to 5; received {int(severity)}")
    return int(severity)


def get_corruption(name):
    """The function `fn(images, severity, seed) -> images` of a corruption (uint8 [B, 32, 32, 3] both ways)."""
    return _FUNCTIONS[canonical_name(name)]


# No tensor-dependent Python control flow anywhere below: AutoGraph (which tf.data.map and tf.function apply to
# everything they call) would only spend seconds converting the corruption code.
@tf.autograph.experimental.do_not_convert
def apply(images, name, severity, seed=0):
    """Checks the arguments, then runs one corruption on a uint8 batch [B, 32, 32, 3]; returns uint8 [B, 32, 32, 3].

    `seed` is an int or a shape-[2] integer tensor; the same seed and images give the same result, eagerly, in
    `tf.function` and in `tf.data.map`.
    """
    function = get_corruption(name)
    severity = validate_severity(severity)
    images = common.validate_images(images)
    corrupted = function(images, severity, common.as_seed(seed))
    return tf.ensure_shape(corrupted, images.shape)
