"""A built-in, procedurally generated 10-class 32x32 RGB data set: the offline default of the quickstart and tests.

Each image is one foreground object on a cluttered background. The class fixes the object's shape and texture
and makes its hue likely (not certain); position, size, rotation, shading, background, clutter lines and sensor
noise are random. Colour alone therefore classifies only part of the set: a model must see shapes and fine
textures, which is what noise, blur and contrast corruptions destroy, so they hurt accuracy here as on CIFAR.
"""

import numpy as np

from mocse_tf.corruptions.digital import hsv_to_rgb

CLASS_NAMES = (
    "disc",  # solid, smoothly shaded disc
    "square",  # solid, smoothly shaded square
    "triangle",  # solid equilateral triangle
    "ring",  # annulus
    "cross",  # plus sign
    "star",  # five-lobed star
    "crescent",  # disc with an offset bite taken out
    "stripes",  # square patch of parallel stripes (3.5-5 px period)
    "checker",  # square patch of a checkerboard (3.5-5 px period)
    "dots",  # disc patch of a polka-dot lattice (3.5-5 px period)
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 32
DEFAULT_NUM_EXAMPLES = {"train": 10_000, "test": 2_000}

# Images come in independently seeded chunks, so the first n images of a split do not depend on how many are
# asked for (num_examples cuts without generating the whole split); each chunk holds every class equally.
_CHUNK_SIZE = 500
# Train and test draw from different SeedSequence streams of the same seed: never the same images.
_SPLIT_STREAM = {"train": 0, "test": 1}

_HUE_JITTER = 0.07  # std of the hue around its class centre (class centres are 0.1 apart on the hue circle)
_RANDOM_HUE_FRACTION = 0.25  # share of images whose hue ignores the class entirely
_SENSOR_NOISE_STD = 4.0  # in 0-255 units: mild, so that added noise is a real shift
_TEXTURE_PERIOD_PX = (3.5, 5.0)


def generate(num_examples, *, split="train", seed=0):
    """Returns (images uint8 [n, 32, 32, 3], labels int64 [n]); the same (split, seed) always gives the same set."""
    num_chunks = -(-num_examples // _CHUNK_SIZE)
    images, labels = [], []
    for chunk in range(num_chunks):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SPLIT_STREAM[split], chunk)))
        chunk_images, chunk_labels = _generate_chunk(rng, _CHUNK_SIZE)
        images.append(chunk_images)
        labels.append(chunk_labels)
    if not images:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8), np.zeros((0,), np.int64)
    return np.concatenate(images)[:num_examples], np.concatenate(labels)[:num_examples]


def _generate_chunk(rng, n):
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int64)
    canvas = _background(rng, n)
    canvas = _draw_clutter_lines(rng, canvas)

    # Object frame: (u, v) are pixel coordinates rotated about the object centre and divided by its radius.
    pixel = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    centre_x = rng.uniform(11.0, 21.0, n).astype(np.float32)[:, None, None]
    centre_y = rng.uniform(11.0, 21.0, n).astype(np.float32)[:, None, None]
    radius = rng.uniform(7.0, 11.5, n).astype(np.float32)[:, None, None]
    angle = rng.uniform(0.0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    dx = pixel[None, None, :] - centre_x
    dy = pixel[None, :, None] - centre_y
    cos, sin = np.cos(angle), np.sin(angle)
    u = (dx * cos + dy * sin) / radius
    v = (-dx * sin + dy * cos) / radius
    period = rng.uniform(*_TEXTURE_PERIOD_PX, n).astype(np.float32)[:, None, None]

    colour = _object_colours(rng, labels)  # [n, 3] in 0-1
    darkness = rng.uniform(0.15, 0.45, n).astype(np.float32)[:, None, None]
    # Smooth shading across the object (a lit side and a shaded side) for the solid classes.
    shade_direction = rng.uniform(0.0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    shading = 1.0 + 0.25 * (u * np.cos(shade_direction) + v * np.sin(shade_direction))

    inside = np.empty(u.shape, bool)  # pixel belongs to the object
    bright = np.empty(u.shape, bool)  # object pixel takes the bright colour, not its dark variant
    for label, name in enumerate(CLASS_NAMES):
        index = np.flatnonzero(labels == label)
        inside[index], bright[index] = _SHAPES[name](u[index], v[index], radius[index], period[index])
    intensity = np.where(bright, shading, darkness) * 255.0
    canvas = np.where(inside[..., None], colour[:, None, None, :] * intensity[..., None], canvas)

    # Grey (luminance) sensor noise: one draw per pixel costs a third of per-channel noise.
    canvas += rng.standard_normal(canvas.shape[:-1] + (1,), dtype=np.float32) * _SENSOR_NOISE_STD
    np.clip(canvas, 0.0, 255.0, out=canvas)
    return np.rint(canvas, out=canvas).astype(np.uint8), labels


def _background(rng, n):
    """Low-frequency clutter: a random 4x4 grid of dull colours, bilinearly upsampled to 32x32 (0-255 floats)."""
    grid = 4
    hue = rng.uniform(0.0, 1.0, (n, grid, grid))
    saturation = rng.uniform(0.0, 0.4, (n, grid, grid))
    value = rng.uniform(0.1, 0.85, (n, grid, grid))
    colours = np.asarray(hsv_to_rgb(hue, saturation, value))  # [n, 4, 4, 3]
    # Bilinear interpolation weights from the 4 grid nodes to the 32 pixels of one axis.
    position = (np.arange(IMAGE_SIZE) + 0.5) / IMAGE_SIZE * (grid - 1)
    weights = np.maximum(0.0, 1.0 - np.abs(position[:, None] - np.arange(grid)[None, :])).astype(np.float32)
    channels_first = colours.astype(np.float32).transpose(0, 3, 1, 2)  # [n, 3, 4, 4]
    upsampled = weights @ channels_first @ weights.T  # [n, 3, 32, 32]; einsum is 20x slower here
    return upsampled.transpose(0, 2, 3, 1) * 255.0


def _draw_clutter_lines(rng, canvas):
    """One or two thin lines of random colour across the whole image: edges that belong to no class."""
    n = canvas.shape[0]
    pixel = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    for line in range(2):
        present = rng.uniform(size=n) < (1.0 if line == 0 else 0.5)
        angle = rng.uniform(0.0, np.pi, n).astype(np.float32)[:, None, None]
        offset = rng.uniform(4.0, 28.0, (n, 2)).astype(np.float32)
        distance = np.abs(
            (pixel[None, None, :] - offset[:, 0, None, None]) * np.sin(angle)
            - (pixel[None, :, None] - offset[:, 1, None, None]) * np.cos(angle)
        )
        hsv = (rng.uniform(size=n), rng.uniform(0.0, 0.6, n), rng.uniform(0.2, 1.0, n))
        colour = np.asarray(hsv_to_rgb(*hsv)) * 255.0
        on_line = (distance < 0.6) & present[:, None, None]
        canvas = np.where(on_line[..., None], colour[:, None, None, :].astype(np.float32), canvas)
    return canvas


def _object_colours(rng, labels):
    """Saturated colours whose hue centres on the class's point of the hue circle, with jitter and outliers."""
    n = labels.size
    hue = labels / NUM_CLASSES + rng.normal(0.0, _HUE_JITTER, n)
    random_hue = rng.uniform(size=n) < _RANDOM_HUE_FRACTION
    hue = np.where(random_hue, rng.uniform(size=n), hue) % 1.0
    saturation = rng.uniform(0.55, 1.0, n)
    value = rng.uniform(0.65, 1.0, n)
    return np.asarray(hsv_to_rgb(hue, saturation, value), np.float32)  # float64 planes: NumPy's arithmetic


# Each shape maps object-frame coordinates to (mask: pixel belongs to the object, bright: pixel takes the
# bright object colour rather than its dark variant). Textured shapes use the radius to keep the period in pixels.


def _solid(mask):
    return mask, np.ones_like(mask)


def _disc(u, v, radius, period):
    return _solid(np.hypot(u, v) < 1.0)


def _square(u, v, radius, period):
    return _solid(np.maximum(np.abs(u), np.abs(v)) < 0.8)


def _triangle(u, v, radius, period):
    inside = np.ones(u.shape, bool)
    for corner in range(3):
        normal = np.pi / 2 + 2 * np.pi * corner / 3
        inside &= u * np.cos(normal) + v * np.sin(normal) < 0.55
    return _solid(inside)


def _ring(u, v, radius, period):
    distance = np.hypot(u, v)
    return _solid((distance < 1.0) & (distance > 0.55))


def _cross(u, v, radius, period):
    arm_u = (np.abs(u) < 0.3) & (np.abs(v) < 1.0)
    arm_v = (np.abs(v) < 0.3) & (np.abs(u) < 1.0)
    return _solid(arm_u | arm_v)


def _star(u, v, radius, period):
    return _solid(np.hypot(u, v) < 0.55 + 0.45 * np.cos(5 * np.arctan2(v, u)))


def _crescent(u, v, radius, period):
    return _solid((np.hypot(u, v) < 1.0) & (np.hypot(u - 0.5, v) > 0.75))


def _stripes(u, v, radius, period):
    mask = np.maximum(np.abs(u), np.abs(v)) < 0.85
    return mask, np.cos(2 * np.pi * u * radius / period) > 0


def _checker(u, v, radius, period):
    mask = np.maximum(np.abs(u), np.abs(v)) < 0.85
    cell_u = np.floor(2 * u * radius / period).astype(np.int64)
    cell_v = np.floor(2 * v * radius / period).astype(np.int64)
    return mask, (cell_u + cell_v) % 2 == 0


def _dots(u, v, radius, period):
    mask = np.hypot(u, v) < 1.0
    lattice_u = np.mod(u * radius, period) - period / 2
    lattice_v = np.mod(v * radius, period) - period / 2
    return mask, np.hypot(lattice_u, lattice_v) < 0.3 * period


_SHAPES = {
    "disc": _disc,
    "square": _square,
    "triangle": _triangle,
    "ring": _ring,
    "cross": _cross,
    "star": _star,
    "crescent": _crescent,
    "stripes": _stripes,
    "checker": _checker,
    "dots": _dots,
}
