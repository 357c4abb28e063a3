"""Tests for the weather corruptions (snow, frost, fog, spatter) against NumPy/OpenCV/SciPy re-computations."""

import importlib.resources

import cv2
import numpy as np
import pytest
import scipy.ndimage
import skimage.filters
import tensorflow as tf
from PIL import Image

from mocse_tf.corruptions import motion, weather


def natural_images(count, seed=0):
    """Smooth colour images with edges and texture (blurred noise plus a bright square), uint8."""
    rng = np.random.RandomState(seed)
    noise = rng.uniform(0, 255, (count, 32, 32, 3))
    images = scipy.ndimage.gaussian_filter(noise, (0, 1.5, 1.5, 0)) * 2.5 - 190
    images[:, 8:20, 10:24] += 60
    return np.clip(images + rng.normal(0, 6, images.shape), 0, 255).astype(np.uint8)


def seeds(*values):
    return tf.constant(values, tf.int64)


def test_parameters_are_the_cifar10c_tables():
    # Written out from the specification, so that a typo in a module's table fails here.
    assert weather.SNOW_PARAMS == (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    )
    assert weather.SNOW_ANGLES == (-135, -45)
    assert weather.FROST_PARAMS == ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))
    assert weather.FROST_FILES == ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
    assert weather.FOG_PARAMS == ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))
    assert weather.SPATTER_PARAMS == (
        (0.62, 0.1, 0.7, 0.7, 0.5, False),
        (0.65, 0.1, 0.8, 0.7, 0.5, False),
        (0.65, 0.3, 1, 0.69, 0.5, False),
        (0.65, 0.1, 0.7, 0.69, 0.6, True),
        (0.65, 0.1, 0.5, 0.68, 0.6, True),
    )
    assert weather.WATER_COLOUR == (175, 238, 238) and weather.MUD_COLOUR == (63, 42, 20)


# ------------------------------------------------------------------------------------------------ snow


@pytest.mark.parametrize("zoom", [1.75, 2.25, 1.25])
def test_snow_zoom_matrix_is_the_generators_clipped_zoom(zoom):
    field = np.random.RandomState(0).normal(size=(32, 32))
    side = int(np.ceil(32 / zoom))
    top = (32 - side) // 2
    zoomed = scipy.ndimage.zoom(field[top:top + side, top:top + side], zoom, order=1)
    trim = (zoomed.shape[0] - 32) // 2
    expected = zoomed[trim:trim + 32, trim:trim + 32]
    matrix = weather.clipped_zoom_matrix(zoom)
    np.testing.assert_allclose(matrix @ field @ matrix.T, expected, atol=1e-12)


def reference_snow(image, severity, normal_field, angle):
    """The generator's snow with NumPy/SciPy/OpenCV; the ImageMagick step uses the (separately tested) emulation."""
    mean, std, zoom, threshold, radius, sigma, blend = weather.SNOW_PARAMS[severity - 1]
    layer = normal_field * std + mean
    if zoom != 1:
        side = int(np.ceil(32 / zoom))
        top = (32 - side) // 2
        layer = scipy.ndimage.zoom(layer[top:top + side, top:top + side], zoom, order=1)
        trim = (layer.shape[0] - 32) // 2
        layer = layer[trim:trim + 32, trim:trim + 32]
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8)
    layer = motion.imagemagick_motion_blur(tf.constant(layer[None, :, :, None]), radius, sigma,
                                           tf.constant([angle], tf.float64), weather.SNOW_ANGLES).numpy()[0]
    layer = layer / 255.0
    x = np.asarray(image, np.float32) / 255.0
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(32, 32, 1)
    x = blend * x + (1 - blend) * np.maximum(x, gray * 1.5 + 0.5)
    return np.uint8(np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_snow_matches_reference_with_the_same_draws(severity):
    images = natural_images(6, seed=severity)
    rng = np.random.RandomState(severity)
    fields = rng.normal(size=(6, 32, 32))
    angles = rng.uniform(-135, -45, size=6)
    out = weather.snow_from_fields(tf.constant(images), severity, tf.constant(fields), tf.constant(angles))
    expected = np.stack([reference_snow(im, severity, f, a) for im, f, a in zip(images, fields, angles)])
    difference = np.abs(out.numpy().astype(int) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_snow_never_darkens_the_blended_image():
    images = natural_images(8)
    out = weather.snow(tf.constant(images), 4, seeds(5, 6)).numpy().astype(int)
    blend = weather.SNOW_PARAMS[3][6]
    x = images.astype(np.float32) / 255
    gray = x @ np.float32([0.299, 0.587, 0.114])
    blended = blend * x + (1 - blend) * np.maximum(x, gray[..., None] * 1.5 + 0.5)
    without_snow = np.floor(np.minimum(blended, 1) * 255)
    assert np.all(out >= without_snow - 1)  # -1: float32 rounding of gray in another order
    assert np.mean(out > without_snow + 1) > 0.05  # and snow is actually added


# ------------------------------------------------------------------------------------------------ frost


def test_frost_textures_are_the_packages_files_resized_by_point_two():
    stack, sizes = weather.frost_textures()
    assert sizes.tolist() == [[120, 180], [63, 112], [63, 112], [70, 105], [99, 132]]
    resource = importlib.resources.files("imagecorruptions") / "frost" / "frost2.png"
    with importlib.resources.as_file(resource) as path:
        rgb = np.asarray(Image.open(path).convert("RGB"))
    # At factor 0.2 OpenCV's bilinear resize reads input pixel 5 * i + 2.
    np.testing.assert_array_equal(stack[1, :63, :112], rgb[2::5, 2::5][:63, :112])


def test_frost_blend_weights_recovered_from_black_and_white_images():
    crops = weather.frost_crops(tf.constant(4), seeds(1, 2)).numpy().astype(np.float64)
    black = tf.zeros([4, 32, 32, 3], tf.uint8)
    white = tf.fill([4, 32, 32, 3], tf.constant(255, tf.uint8))
    for severity, (image_weight, frost_weight) in enumerate(weather.FROST_PARAMS, start=1):
        out_black = weather.frost_from_crops(black, severity, crops).numpy()
        out_white = weather.frost_from_crops(white, severity, crops).numpy()
        np.testing.assert_array_equal(out_black, np.floor(frost_weight * crops))
        np.testing.assert_array_equal(out_white, np.floor(np.minimum(image_weight * 255 + frost_weight * crops, 255)))


def test_frost_crops_are_windows_of_the_five_textures_drawn_uniformly():
    stack, sizes = weather.frost_textures()
    # Quirk of the shipped files: frost2.png and frost3.png differ only outside RGB, so their textures agree.
    np.testing.assert_array_equal(stack[1], stack[2])
    crops = weather.frost_crops(tf.constant(300), seeds(3, 4)).numpy()
    # Every crop must be a window of one texture (never of the zero padding); look each one up.
    found = np.zeros(len(sizes), int)
    for crop in crops:
        for index, (height, width) in enumerate(sizes):
            texture = stack[index, :height, :width]
            hits = np.argwhere(np.all(texture[:height - 31, :width - 31] == crop[0, 0], axis=-1))
            if any(np.array_equal(texture[r:r + 32, c:c + 32], crop) for r, c in hits):
                found[index] += 1
                break
    assert found.sum() == 300
    # randint(5): each file has probability 1/5 (frost6 never); frost2 and frost3 count together here.
    shares = np.array([found[0], found[1] + found[2], found[3], found[4]]) / 300
    np.testing.assert_allclose(shares, [0.2, 0.4, 0.2, 0.2], atol=0.08)


def test_frost_crop_offsets_have_exclusive_upper_bounds():
    # randint(0, H - 32) never returns H - 32: the last texture row can never be a crop's last row.
    upper = tf.constant([88, 31, 1] * 10000)
    offsets = weather._uniform_int_below(tf.shape(upper), seeds(9, 9), upper).numpy().reshape(-1, 3)
    assert offsets.min(axis=0).tolist() == [0, 0, 0]
    assert offsets.max(axis=0).tolist() == [87, 30, 0]


# ------------------------------------------------------------------------------------------------ fog


def reference_plasma_fractal(rng, decay, mapsize=32):
    """The generator's plasma_fractal, verbatim in behaviour (NumPy, wrap-around, amplitude w squared)."""
    maparray = np.empty((mapsize, mapsize))
    maparray[0, 0] = 0
    stepsize, wibble = mapsize, 100.0
    while stepsize >= 2:
        half = stepsize // 2
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        square = corners + np.roll(corners, -1, axis=0)
        square += np.roll(square, -1, axis=1)
        maparray[half::stepsize, half::stepsize] = square / 4 + wibble * rng.uniform(-wibble, wibble, square.shape)
        centres = maparray[half::stepsize, half::stepsize]
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        total = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        maparray[0::stepsize, half::stepsize] = total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)
        total = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        maparray[half::stepsize, 0::stepsize] = total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)
        stepsize //= 2
        wibble /= decay
    maparray -= maparray.min()
    return maparray / maparray.max()


def roughness(fractals):
    """Mean absolute difference between horizontal neighbours, and between pixels 8 apart."""
    return (np.mean(np.abs(np.diff(fractals, axis=-1))),
            np.mean(np.abs(fractals[..., 8:] - fractals[..., :-8])))


@pytest.mark.parametrize("decay", [3.0, 1.75])
def test_plasma_fractal_is_normalised_and_has_the_generators_texture(decay):
    fractals = weather.plasma_fractal(tf.constant(400), decay, seeds(2, int(decay * 100))).numpy()
    assert fractals.shape == (400, 32, 32)
    np.testing.assert_array_equal(fractals.min(axis=(1, 2)), 0.0)
    np.testing.assert_array_equal(fractals.max(axis=(1, 2)), 1.0)
    rng = np.random.RandomState(int(decay * 100))
    reference = np.stack([reference_plasma_fractal(rng, decay) for _ in range(400)])
    for ours, theirs in zip(roughness(fractals), roughness(reference)):
        assert ours == pytest.approx(theirs, rel=0.06)
    assert fractals.std() == pytest.approx(reference.std(), rel=0.06)


def test_plasma_fractal_amplitude_is_w_squared():
    # With amplitude w instead of w**2 the coarse levels would not dominate: the fine-scale roughness relative
    # to the large-scale contrast would be far higher. Check the generator's ratio (decay 2).
    fractals = weather.plasma_fractal(tf.constant(300), 2.0, seeds(4, 4)).numpy()
    fine, coarse = roughness(fractals)
    reference = np.stack([reference_plasma_fractal(np.random.RandomState(i), 2.0) for i in range(300)])
    ref_fine, ref_coarse = roughness(reference)
    assert fine / coarse == pytest.approx(ref_fine / ref_coarse, rel=0.08)


def test_fog_blend_follows_the_max_rule():
    fractal = np.random.RandomState(0).uniform(0, 1, (3, 32, 32))
    images = np.zeros((3, 32, 32, 3), np.uint8)
    images[1] = 255
    images[2, 5, 7, 1] = 102  # M = 0.4 from one value of one channel
    for severity, (strength, _) in enumerate(weather.FOG_PARAMS, start=1):
        out = weather.fog_from_fractal(tf.constant(images), severity, tf.constant(fractal)).numpy()
        assert np.all(out[0] == 0)  # M = 0: a black image stays black
        for index, peak in ((1, 1.0), (2, 0.4)):
            x = images[index] / 255.0 + strength * fractal[index][..., None]
            expected = np.uint8(np.clip(x * peak / (peak + strength), 0, 1) * 255)
            np.testing.assert_array_equal(out[index], expected)


def test_fog_is_the_same_for_all_channels_of_a_gray_image():
    images = np.repeat(natural_images(4)[..., :1], 3, axis=-1)
    out = weather.fog(tf.constant(images), 4, seeds(1, 1)).numpy()
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


# ------------------------------------------------------------------------------------------------ spatter


def reference_spatter(image, severity, normal_field):
    """The generator's spatter with NumPy, scikit-image and OpenCV, the normal draw given."""
    mean, std, blur_sigma, threshold, intensity, mud = weather.SPATTER_PARAMS[severity - 1]
    x = np.asarray(image, np.float32) / 255.0
    liquid = skimage.filters.gaussian(normal_field * std + mean, sigma=blur_sigma)
    liquid[liquid < threshold] = 0
    if not mud:
        liquid = (liquid * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = liquid * dist
        m = m / np.max(m) * intensity
        colour = np.float32([175 / 255.0, 238 / 255.0, 238 / 255.0])
        return np.uint8(np.clip(x + m[..., None] * colour, 0, 1) * 255)
    m = np.where(liquid > threshold, 1, 0)
    m = skimage.filters.gaussian(m.astype(np.float32), sigma=intensity)
    m[m < 0.8] = 0
    colour = np.float32([63 / 255.0, 42 / 255.0, 20 / 255.0]) * m[..., None]
    return np.uint8(np.clip(x * (1 - m[..., None]) + colour, 0, 1) * 255)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_spatter_matches_reference_with_the_same_draw(severity):
    images = natural_images(24, seed=severity)
    fields = np.random.RandomState(severity).normal(size=(24, 32, 32))
    out = weather.spatter_from_field(tf.constant(images), severity, tf.constant(fields)).numpy()
    expected = np.stack([reference_spatter(im, severity, f) for im, f in zip(images, fields)])
    difference = np.abs(out.astype(int) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-4
    assert np.any(out != images)  # the draws did make drops


def test_spatter_water_wraps_liquid_above_one_like_astype_uint8():
    # Severity 3 (std 0.3) pushes the blurred liquid above 1.0 in some images; *255 then wraps modulo 256.
    fields = np.random.RandomState(11).normal(size=(64, 32, 32))
    liquid = np.stack([skimage.filters.gaussian(f * 0.3 + 0.65, sigma=1.0) for f in fields])
    assert (liquid > 256 / 255).any(), "the test needs a draw that wraps"
    images = natural_images(64, seed=11)
    out = weather.spatter_from_field(tf.constant(images), 3, tf.constant(fields)).numpy()
    expected = np.stack([reference_spatter(im, 3, f) for im, f in zip(images, fields)])
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_spatter_mud_is_brown_where_the_mask_is_one():
    # A field far above the threshold everywhere: the mud mask is 1 and the image disappears under the colour.
    images = natural_images(2)
    field = np.full((2, 32, 32), 10.0)
    out = weather.spatter_from_field(tf.constant(images), 5, tf.constant(field)).numpy()
    np.testing.assert_array_equal(out, np.stack([reference_spatter(im, 5, f) for im, f in zip(images, field)]))
    assert np.all(np.abs(out.astype(int) - [63, 42, 20]) <= 1)


def test_spatter_water_without_liquid_leaves_the_image_unchanged():
    # The generator would divide 0 by 0 here (never happens with its draws); this implementation adds nothing.
    images = natural_images(2)
    out = weather.spatter_from_field(tf.constant(images), 1, tf.fill([2, 32, 32], tf.constant(-10.0, tf.float64)))
    np.testing.assert_array_equal(out.numpy(), images)


def blob_images(count, seed):
    """uint8 liquid-like layers: zero background, blobs of 178..255 with a few wrapped values."""
    rng = np.random.RandomState(seed)
    liquid = scipy.ndimage.gaussian_filter(rng.normal(0.65, 0.3, (count, 32, 32)), (0, 1, 1))
    liquid[liquid < 0.69] = 0
    return np.mod(np.floor(liquid * 255), 256).astype(np.uint8)


def test_canny_matches_opencv():
    layers = blob_images(64, seed=1)
    edges = weather.canny(tf.constant(layers.astype(np.int32))).numpy()
    expected = np.stack([cv2.Canny(layer, 50, 150) > 0 for layer in layers])
    np.testing.assert_array_equal(edges, expected)


def test_chamfer_distance_matches_opencv_distance_transform():
    layers = blob_images(64, seed=2)
    edges = np.stack([cv2.Canny(layer, 50, 150) > 0 for layer in layers])
    edges[0] = False  # no zero pixel at all: everything is "far"
    out = weather.chamfer_distance(tf.constant(edges), truncate=20).numpy()
    expected = np.stack([
        cv2.threshold(cv2.distanceTransform(np.where(e, 0, 255).astype(np.uint8), cv2.DIST_L2, 5),
                      20, 20, cv2.THRESH_TRUNC)[1] for e in edges
    ])
    np.testing.assert_array_equal(out, expected)


def test_equalize_hist_matches_opencv():
    rng = np.random.RandomState(3)
    values = rng.randint(0, 21, (6, 32, 32))
    values[1] = 7  # constant image
    values[2] = np.where(rng.rand(32, 32) < 0.9, 20, values[2])  # one dominant value
    out = weather.equalize_hist(tf.constant(values.astype(np.int32)), levels=21).numpy()
    expected = np.stack([cv2.equalizeHist(v.astype(np.uint8)) for v in values])
    np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------------------------------------------ all four


@pytest.mark.parametrize("corruption", [weather.snow, weather.frost, weather.fog, weather.spatter])
def test_deterministic_per_seed_and_works_in_tf_data(corruption):
    images = natural_images(6)
    graph = tf.function(lambda batch, seed: corruption(batch, 3, seed))
    first = graph(tf.constant(images), seeds(1, 2)).numpy()
    assert first.dtype == np.uint8 and first.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(first, graph(tf.constant(images), seeds(1, 2)).numpy())
    assert np.any(first != graph(tf.constant(images), seeds(1, 3)).numpy())
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4).map(lambda b: corruption(b, 3, seeds(1, 2)))
    batches = list(dataset.as_numpy_iterator())
    assert [b.shape for b in batches] == [(4, 32, 32, 3), (2, 32, 32, 3)]
    np.testing.assert_array_equal(batches[0], graph(tf.constant(images[:4]), seeds(1, 2)).numpy())


@pytest.mark.parametrize("corruption", [weather.snow, weather.frost, weather.fog, weather.spatter])
def test_random_draws_differ_between_images_of_a_batch(corruption):
    images = np.repeat(natural_images(1), 8, axis=0)
    out = corruption(tf.constant(images), 5, seeds(4, 2)).numpy()
    assert len({image.tobytes() for image in out}) == 8
