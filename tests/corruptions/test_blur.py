"""Blur corruptions (defocus, frosted glass, zoom, Gaussian) against NumPy / SciPy / scikit-image / OpenCV
re-computations of the generator's steps, in all three calling modes."""

import cv2
import numpy as np
import pytest
import scipy.ndimage
import skimage.filters
import tensorflow as tf

from mocse_tf.corruptions import blur, filters
from corruption_cases import assert_same_as_reference, load_clean_images, run_modes  # beside this file

SEVERITIES = [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def clean_images():
    """Real CIFAR-10 test images when ../shared is present, else smooth random images (uint8 [256, 32, 32, 3])."""
    return load_clean_images()


# ------------------------------------------------------------------------------------ references (spec steps)


def reference_gaussian_blur(image, severity):
    sigma = [0.4, 0.6, 0.7, 0.8, 1.0][severity - 1]
    blurred = skimage.filters.gaussian(image / 255.0, sigma=sigma, channel_axis=-1)
    return np.uint8(np.clip(blurred, 0, 1) * 255)


def reference_defocus_blur(image, severity):
    radius, alias_sigma = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    offsets = np.arange(-8, 9)
    xx, yy = np.meshgrid(offsets, offsets)
    disk = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    kernel = cv2.GaussianBlur(disk, ksize=(3, 3), sigmaX=alias_sigma)
    x = image / 255.0
    channels = np.stack([cv2.filter2D(x[:, :, c], -1, kernel) for c in range(3)], axis=-1)
    return np.uint8(np.clip(channels, 0, 1) * 255)


def reference_clipped_zoom(image, factor):
    side = int(np.ceil(32 / factor))
    top = (32 - side) // 2
    zoomed = scipy.ndimage.zoom(image[top : top + side, top : top + side], (factor, factor, 1), order=1)
    trim = (zoomed.shape[0] - 32) // 2
    return zoomed[trim : trim + 32, trim : trim + 32]


def reference_zoom_blur(image, severity):
    factors = np.arange(1, [1.06, 1.11, 1.16, 1.21, 1.26][severity - 1], 0.01)
    x = (image / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for factor in factors:
        out += reference_clipped_zoom(x, factor)
    return np.uint8(np.clip((x + out) / (len(factors) + 1), 0, 1) * 255)


def reference_glass_blur(image, severity, shifts):
    """The generator's glass_blur with its random draws replaced by `shifts` [iterations, 30, 30, 2]."""
    sigma, _, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][severity - 1]
    x = np.uint8(skimage.filters.gaussian(image / 255.0, sigma=sigma, channel_axis=-1) * 255)
    for i in range(iterations):
        for h in range(31, 1, -1):
            for w in range(31, 1, -1):
                dx, dy = shifts[i, h - 2, w - 2]
                h_prime, w_prime = h + dy, w + dx
                x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]  # the generator's "swap"
    return np.uint8(np.clip(skimage.filters.gaussian(x / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255)


def apply_reference(reference, images, severity):
    return np.stack([reference(image, severity) for image in images])


# ------------------------------------------------------------------------------------ deterministic blurs


@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_blur_equals_scikit_image(clean_images, severity):
    expected = apply_reference(reference_gaussian_blur, clean_images, severity)
    assert_same_as_reference(run_modes(blur.gaussian_blur, clean_images, severity), expected)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_defocus_blur_equals_opencv(clean_images, severity):
    expected = apply_reference(reference_defocus_blur, clean_images, severity)
    assert_same_as_reference(run_modes(blur.defocus_blur, clean_images, severity), expected)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_zoom_blur_equals_scipy(clean_images, severity):
    images = clean_images[:96]
    expected = apply_reference(reference_zoom_blur, images, severity)
    assert_same_as_reference(run_modes(blur.zoom_blur, images, severity), expected)


def test_zoom_blur_on_a_large_batch_equals_small_batches(clean_images):
    images = np.concatenate([clean_images] * 2)  # 512 > one chunk
    whole = blur.zoom_blur(tf.constant(images), 2).numpy()
    parts = np.concatenate([blur.zoom_blur(tf.constant(images[i : i + 100]), 2).numpy() for i in range(0, 512, 100)])
    np.testing.assert_array_equal(whole, parts)


def test_zoom_factor_counts_follow_the_floating_arange():
    assert [len(blur.zoom_factors(s)) for s in SEVERITIES] == [7, 12, 16, 21, 26]
    assert blur.zoom_factors(1)[-1] == pytest.approx(1.06) and blur.zoom_factors(3)[-1] == pytest.approx(1.15)


def test_flat_image_keeps_the_generators_truncation():
    """Flat grey levels go through float32 sums of 7..26 zooms and a division: 41..85 of the 256 levels come
    out one level lower in the generator, and must here too (a float64 or reordered sum gives the level back).
    A zoom of a flat image is that image, so the generator's result is the float32 recurrence below."""
    levels = np.arange(256, dtype=np.uint8)
    images = np.broadcast_to(levels[:, None, None, None], (256, 32, 32, 3)).copy()
    for severity in SEVERITIES:
        count = len(blur.zoom_factors(severity))
        x = (levels / 255.0).astype(np.float32)
        out = np.zeros_like(x)
        for _ in range(count):
            out += x
        expected = np.uint8(np.clip((x + out) / (count + 1), 0, 1) * 255)
        assert np.count_nonzero(expected != levels) >= 41
        got = tf.function(lambda im: blur.zoom_blur(im, severity), autograph=False)(tf.constant(images)).numpy()
        np.testing.assert_array_equal(got, np.broadcast_to(expected[:, None, None, None], images.shape))


def test_defocus_kernel_is_opencvs_float32_kernel():
    for radius, alias_sigma in blur.DEFOCUS_PARAMS:
        offsets = np.arange(-8, 9)
        xx, yy = np.meshgrid(offsets, offsets)
        disk = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
        disk /= np.sum(disk)
        expected = cv2.GaussianBlur(disk, ksize=(3, 3), sigmaX=alias_sigma)
        got = blur.defocus_kernel(radius, alias_sigma)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
    # Radius < 1: a single centre pixel, so a 3x3 Gaussian; radius 1: a plus; radius 1.5: a 3x3 square.
    assert np.count_nonzero(blur.defocus_kernel(0.5, 0.6)) == 9
    assert np.count_nonzero(blur.defocus_kernel(1.0, 0.2)) == 21
    assert np.count_nonzero(blur.defocus_kernel(1.5, 0.1)) == 25


@pytest.mark.parametrize("mode,truncate", [("nearest", 4.0), ("reflect", 3.0), ("mirror", 4.0), ("wrap", 4.0)])
def test_gaussian_filter_is_bit_identical_to_scipy(clean_images, mode, truncate):
    x = clean_images[:32] / 255.0
    for sigma in (0.05, 0.4, 1.0, 1.92):
        for values in (x, x.astype(np.float32)):  # SciPy filters in double and stores in the input's dtype
            expected = np.stack(
                [scipy.ndimage.gaussian_filter(i, (sigma, sigma, 0), mode=mode, truncate=truncate) for i in values]
            )
            got = filters.gaussian_filter(tf.constant(values), sigma, mode, truncate).numpy()
            assert got.dtype == values.dtype
            np.testing.assert_array_equal(got, expected)


def test_gaussian_filter_keeps_scipys_order_inside_tf_function():
    """On large batches Grappler reorders chains of Add inside tf.function (29% of the raw values changed,
    ~2e-6 of the gaussian_blur pixels); the filter must give the eager (SciPy) bits there too."""
    x = tf.constant(np.random.RandomState(2).randint(0, 256, (1024, 32, 32, 3)) / 255.0)
    for sigma in (0.4, 1.0):
        eager = filters.gaussian_filter(x, sigma).numpy()
        graph = tf.function(lambda v: filters.gaussian_filter(v, sigma), autograph=False)(x).numpy()
        np.testing.assert_array_equal(graph, eager)


# ------------------------------------------------------------------------------------ frosted glass blur


def literal_shuffle(image, shifts):
    """One iteration of the generator's loop, literally (NumPy views and the tuple "swap")."""
    x = image.copy()
    for h in range(31, 1, -1):
        for w in range(31, 1, -1):
            dx, dy = shifts[h - 2, w - 2]
            x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx], x[h, w]
    return x


def test_glass_shuffle_is_one_gather_per_iteration():
    """The loop is a one-way copy whose sources are still unvisited: one gather from the iteration's input."""
    rng = np.random.RandomState(1)
    images = rng.randint(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    shifts = rng.randint(-1, 1, (6, 30, 30, 2)).astype(np.int32)
    sources = blur.glass_shuffle_sources(tf.constant(shifts)).numpy()
    gathered = np.take_along_axis(images.reshape(6, 1024, 3), sources[..., None], axis=1).reshape(images.shape)
    for image, image_shifts, got in zip(images, shifts, gathered):
        np.testing.assert_array_equal(got, literal_shuffle(image, image_shifts))
    # It is not a swap: with all shifts (-1, -1) every interior pixel copies its upper-left neighbour.
    diagonal = literal_shuffle(images[0], -np.ones((30, 30, 2), np.int32))
    np.testing.assert_array_equal(diagonal[2:, 2:], images[0][1:-1, 1:-1])


@pytest.mark.parametrize("severity", SEVERITIES)
def test_glass_blur_with_given_shifts_equals_the_generator_loop(clean_images, severity):
    images = clean_images[:8]
    iterations = blur.GLASS_PARAMS[severity - 1][2]
    rng = np.random.RandomState(severity)
    shifts = rng.randint(-1, 1, (iterations, 8, 30, 30, 2)).astype(np.int32)
    got = blur.glass_blur_with_shifts(tf.constant(images), severity, [tf.constant(s) for s in shifts]).numpy()
    expected = np.stack([reference_glass_blur(img, severity, shifts[:, b]) for b, img in enumerate(images)])
    np.testing.assert_array_equal(got, expected)


def test_glass_blur_shifts_are_up_or_left_only_and_independent():
    shifts = blur.glass_blur_shifts(tf.constant(200), 2, tf.constant([3, 4], tf.int64))
    assert len(shifts) == 2
    values = np.stack([s.numpy() for s in shifts])  # [2, 200, 30, 30, 2]
    assert set(np.unique(values)) == {-1, 0}
    n = values[..., 0].size
    # Each component is -1 with probability 1/2; dx and dy and the two iterations are independent.
    for p in (np.mean(values[..., 0] == -1), np.mean(values[..., 1] == -1), np.mean(values[0] == values[1])):
        assert abs(p - 0.5) < 5 / np.sqrt(n)
    both = np.mean((values[..., 0] == -1) & (values[..., 1] == -1))
    assert abs(both - 0.25) < 5 * np.sqrt(0.25 * 0.75 / n)
    # Different images of the batch get different shifts.
    assert np.mean(values[0, 0] != values[0, 1]) > 0.4


def test_glass_blur_is_deterministic_per_seed(clean_images):
    images = tf.constant(np.stack([clean_images[0]] * 4))
    a = blur.frosted_glass_blur(images, 4, tf.constant([5, 6], tf.int64)).numpy()
    b = blur.frosted_glass_blur(images, 4, tf.constant([5, 6], tf.int64)).numpy()
    c = blur.frosted_glass_blur(images, 4, tf.constant([5, 7], tf.int64)).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert (a[0] != a[1]).any(), "identical images in one batch must get independent shuffles"


def test_glass_blur_severity_one_is_the_shuffle_alone(clean_images):
    """sigma 0.05 gives SciPy a radius-0 kernel [1.0]: the blurs are identities and only the shuffle acts."""
    images = clean_images[:4]
    shifts = np.random.RandomState(0).randint(-1, 1, (4, 30, 30, 2)).astype(np.int32)
    got = blur.glass_blur_with_shifts(tf.constant(images), 1, [tf.constant(shifts)]).numpy()
    np.testing.assert_array_equal(got, np.stack([literal_shuffle(i, s) for i, s in zip(images, shifts)]))
