"""Tests for elastic_transform against OpenCV / SciPy / scikit-image re-computations of each step."""

import pickle

import cv2
import numpy as np
import pytest
import scipy.ndimage
import skimage.filters
import tensorflow as tf

from mocse_tf.corruptions import elastic

SOURCE = np.float32([[26, 26], [26, 6], [6, 6]])


def natural_images(count, seed=0):
    rng = np.random.RandomState(seed)
    images = scipy.ndimage.gaussian_filter(rng.uniform(0, 255, (count, 32, 32, 3)), (0, 1.5, 1.5, 0)) * 2.5 - 190
    images[:, 8:20, 10:24] += 60
    return np.clip(images + rng.normal(0, 6, images.shape), 0, 255).astype(np.uint8)


def reflect_101(index, size):
    period = 2 * size - 2
    index = np.mod(index, period)
    return np.where(index >= size, period - index, index)


def reference_warp_affine(image, matrix):
    """cv2.warpAffine(image, matrix, (32, 32), INTER_LINEAR, BORDER_REFLECT_101) as OpenCV 3.x-4.10 computes
    it: inverse map, coordinates rounded to 1/1024 then to 1/32 pixel, float32 table weights."""
    inverse = cv2.invertAffineTransform(matrix)
    rows, cols = np.mgrid[0:32, 0:32].astype(np.float64)
    fixed = []
    for k in range(2):
        per_col = np.rint(inverse[k, 0] * cols * 1024)
        per_row = np.rint((inverse[k, 1] * rows + inverse[k, 2]) * 1024) + 16
        fixed.append(np.floor((per_col + per_row) / 32).astype(np.int64))
    x_fixed, y_fixed = fixed
    fx, fy = (x_fixed & 31).astype(np.float32) / 32, (y_fixed & 31).astype(np.float32) / 32
    x0, y0 = x_fixed >> 5, y_fixed >> 5
    c0, c1, r0, r1 = reflect_101(x0, 32), reflect_101(x0 + 1, 32), reflect_101(y0, 32), reflect_101(y0 + 1, 32)
    one = np.float32(1)
    fx, fy = fx[..., None], fy[..., None]
    return (image[r0, c0] * ((one - fy) * (one - fx)) + image[r0, c1] * ((one - fy) * fx)
            + image[r1, c0] * (fy * (one - fx)) + image[r1, c1] * (fy * fx))


def reference_elastic(image, severity, jitter, field_x, field_y):
    """The generator's elastic_transform with the random draws given (jitter in pixels)."""
    alpha, sigma, _ = elastic.ELASTIC_PARAMS[severity - 1]
    image = np.asarray(image, np.float32) / 255.0
    matrix = cv2.getAffineTransform(SOURCE, SOURCE + jitter.astype(np.float32))
    image = reference_warp_affine(image, matrix)
    dx = (skimage.filters.gaussian(field_x, sigma=sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dy = (skimage.filters.gaussian(field_y, sigma=sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    x, y, z = np.meshgrid(np.arange(32), np.arange(32), np.arange(3))
    indices = (np.reshape(y + dy[..., None], (-1, 1)), np.reshape(x + dx[..., None], (-1, 1)), np.reshape(z, (-1, 1)))
    out = scipy.ndimage.map_coordinates(image, indices, order=1, mode="reflect").reshape(image.shape)
    return np.uint8(np.clip(out, 0, 1) * 255)


def draws(count, severity, seed):
    rng = np.random.RandomState(seed)
    jitter = rng.uniform(-1, 1, (count, 3, 2)) * elastic.ELASTIC_PARAMS[severity - 1][2]
    return jitter, rng.uniform(-1, 1, (count, 32, 32)), rng.uniform(-1, 1, (count, 32, 32))


def test_parameters_are_the_cifar10c_table():
    alpha, sigma, jitter = zip(*elastic.ELASTIC_PARAMS)
    np.testing.assert_allclose(alpha, [0, 1.6, 2.56, 3.2, 3.2], rtol=1e-12)
    np.testing.assert_allclose(sigma, [0, 6.4, 1.92, 1.28, 0.96], rtol=1e-12)
    np.testing.assert_allclose(jitter, [2.56, 2.24, 1.92, 1.6, 0.96], rtol=1e-12)
    np.testing.assert_array_equal(elastic.SOURCE_POINTS, SOURCE)


def test_inverse_affine_inverts_opencvs_affine_from_three_points():
    jitter = np.random.RandomState(0).uniform(-2.56, 2.56, (5, 3, 2)).astype(np.float32)
    inverse = elastic.inverse_affine(tf.constant(SOURCE + jitter)).numpy()
    for got, offsets in zip(inverse, jitter):
        expected = cv2.invertAffineTransform(cv2.getAffineTransform(SOURCE, SOURCE + offsets))
        np.testing.assert_allclose(got, expected, atol=1e-9)


def test_warp_affine_matches_opencv_fixed_point_warp():
    images = natural_images(16).astype(np.float32) / 255
    jitter = np.random.RandomState(1).uniform(-2.56, 2.56, (16, 3, 2)).astype(np.float32)
    out = elastic.warp_affine(tf.constant(images), elastic.inverse_affine(tf.constant(SOURCE + jitter))).numpy()
    for got, image, offsets in zip(out, images, jitter):
        matrix = cv2.getAffineTransform(SOURCE, SOURCE + offsets)
        np.testing.assert_array_equal(got, reference_warp_affine(image, matrix))
        # OpenCV >= 4.11 samples at exact coordinates: at most 1/64 pixel away, so values stay close.
        modern = cv2.warpAffine(image, matrix, (32, 32), borderMode=cv2.BORDER_REFLECT_101)
        assert np.abs(got - modern).max() < 0.02


def test_map_coordinates_matches_scipy_reflect_mode_even_far_outside():
    images = natural_images(4).astype(np.float32) / 255
    rng = np.random.RandomState(2)
    row_shift = rng.uniform(-40, 40, (4, 32, 32)).astype(np.float32)
    col_shift = rng.normal(0, 1.5, (4, 32, 32)).astype(np.float32)
    out = elastic.map_coordinates_bilinear(tf.constant(images), tf.constant(row_shift), tf.constant(col_shift))
    x, y, z = np.meshgrid(np.arange(32), np.arange(32), np.arange(3))
    for got, image, dy, dx in zip(out.numpy(), images, row_shift, col_shift):
        indices = (np.reshape(y + dy[..., None], (-1, 1)), np.reshape(x + dx[..., None], (-1, 1)),
                   np.reshape(z, (-1, 1)))
        expected = scipy.ndimage.map_coordinates(image, indices, order=1, mode="reflect").reshape(image.shape)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "sigma, mode, truncate", [(6.4, "reflect", 3.0), (0.96, "reflect", 3.0), (0.7, "nearest", 4.0)]
)
def test_gaussian_matrix_is_scipys_filter(sigma, mode, truncate):
    fields = np.random.RandomState(3).uniform(-1, 1, (3, 32, 32))
    out = elastic.smooth_fields(tf.constant(fields), sigma, mode, truncate).numpy()
    expected = np.stack([skimage.filters.gaussian(f, sigma=sigma, mode=mode, truncate=truncate) for f in fields])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-14)
    as_float32 = elastic.smooth_fields(tf.constant(fields.astype(np.float32)), sigma, mode, truncate).numpy()
    expected32 = np.stack([scipy.ndimage.gaussian_filter(f, sigma, mode=mode, truncate=truncate)
                           for f in fields.astype(np.float32)])
    np.testing.assert_allclose(as_float32, expected32, rtol=0, atol=2e-7)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_elastic_matches_reference_with_the_same_draws(severity):
    images = natural_images(12, seed=severity)
    jitter, field_x, field_y = draws(12, severity, seed=severity)
    out = elastic.elastic_from_fields(tf.constant(images), severity, tf.constant(jitter), tf.constant(field_x),
                                      tf.constant(field_y)).numpy()
    expected = np.stack([reference_elastic(im, severity, j, fx, fy)
                         for im, j, fx, fy in zip(images, jitter, field_x, field_y)])
    difference = np.abs(out.astype(int) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-4


def test_severity_one_is_a_pure_affine_warp():
    images = natural_images(4)
    jitter, field_x, field_y = draws(4, 1, seed=7)
    args = (tf.constant(images), 1, tf.constant(jitter))
    first = elastic.elastic_from_fields(*args, tf.constant(field_x), tf.constant(field_y)).numpy()
    other_fields = elastic.elastic_from_fields(*args, tf.constant(-field_y), tf.constant(field_x)).numpy()
    np.testing.assert_array_equal(first, other_fields)  # alpha = 0: the displacement fields play no part
    matrix = [cv2.getAffineTransform(SOURCE, SOURCE + j.astype(np.float32)) for j in jitter]
    warped = np.stack([reference_warp_affine(im.astype(np.float32) / 255, m) for im, m in zip(images, matrix)])
    np.testing.assert_array_equal(first, np.uint8(np.clip(warped, 0, 1) * 255))


def test_no_jitter_and_no_displacement_is_the_identity():
    images = natural_images(2)
    zeros = tf.zeros([2, 32, 32], tf.float64)
    out = elastic.elastic_from_fields(tf.constant(images), 3, tf.zeros([2, 3, 2], tf.float64), zeros, zeros)
    np.testing.assert_array_equal(out.numpy(), images)


def test_difference_shrinks_with_severity_on_real_images(cifar10_mini_dir):
    with open(cifar10_mini_dir / "test_batch", "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    images = batch[b"data"][:400].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    differences = []
    for severity in range(1, 6):
        out = elastic.elastic_transform(tf.constant(images), severity, tf.constant([1, severity])).numpy()
        differences.append(np.abs(out.astype(float) - images).mean())
    assert all(a > b for a, b in zip(differences, differences[1:])), differences


def test_deterministic_per_seed_and_works_in_tf_data():
    images = natural_images(6)
    graph = tf.function(lambda batch, seed: elastic.elastic_transform(batch, 4, seed))
    first = graph(tf.constant(images), tf.constant([1, 2])).numpy()
    assert first.dtype == np.uint8 and first.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(first, graph(tf.constant(images), tf.constant([1, 2])).numpy())
    assert np.any(first != graph(tf.constant(images), tf.constant([1, 3])).numpy())
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4).map(
        lambda b: elastic.elastic_transform(b, 4, tf.constant([1, 2]))
    )
    batches = list(dataset.as_numpy_iterator())
    assert [b.shape for b in batches] == [(4, 32, 32, 3), (2, 32, 32, 3)]
    np.testing.assert_array_equal(batches[0], graph(tf.constant(images[:4]), tf.constant([1, 2])).numpy())
    same = np.repeat(images[:1], 6, axis=0)
    assert len({image.tobytes() for image in graph(tf.constant(same), tf.constant([5, 5])).numpy()}) == 6
