"""Tests for the ImageMagick motion blur emulation and CIFAR-10-C motion_blur."""

import base64
import math

import numpy as np
import pytest
import tensorflow as tf

from mocse_tf.corruptions import motion

# Outputs of the real ImageMagick 6.9.11-60 Q16 (MagickMotionBlurImage through Wand, PNG in and out, as the
# generator calls it) for images RandomState(seed).randint(0, 256, shape); gray cases went through an 8-bit
# grayscale PNG. Small non-square images make every tap reach past the border (edge virtual pixels).
# Fields: seed, (H, W, C), radius, sigma, angle, base64 of the uint8 output (RGB, H x W x C).
IMAGEMAGICK_CASES = (
    (0, (8, 12, 3), 6, 1.0, 17.3, "tUCttFadxE5clCuwalRbn4msO6DPPVyfPlOBH2NbWqyQzOO/202Uu3aNiqnLRpBnnWNgoRd+mm9Ltu2piuGDTaVATGt6lkB9LqfFOU6aSVF1MZs/PZaRVyd9cC6PaWRejmZgd5N8PL86ELsuj7mSyGOiuoqcZtKgQ6VrZE9kZnaRpZo4mncbe3Y7jD5Ke1otq5O6WKR+E5l7L7x8OY5pf4VVsqODxmWxlZKDN3xfMDSgLRljGl00GHBhL3iNKkGlZZ6Qf49nIRlxWTZBtVQuWUxWU46ToMb4ijauKE6LQdempMJfoo5WaaJNh2WikUuhpZdzfaF7raTH0/f7XjiYVT5Hhm08ZFsjtaY5vm+TwVzPgDWUonE6y+BmlNDwI9b+"),  # noqa: E501
    (1, (8, 12, 3), 9, 2.5, -38.0, "e714pKN9yXCW0XKIw1O5p3aqi5Lig6/EfKPNnKrPqbvp1+nxtbpsp4SXt02RrVB0i2OIm1PfgazMqKnAXnKwqKe1q6nkouu6fE51e0NkUnFOcnZkl3HTmGy3g2iHipd/aHGMeJ2LW9p6TdlXRnR5RHZSgo5smV+4n1mOfXFfUJOblptKXKaMLqB4ScIeNcEwa1ZPiFdwfl63eY2ka2tcW4CBdqZpWK6zWph5dqUqb7VBT6VPgWeAWlPDfLB8hHd2PoiPboKFd7CLepFVupNqg4pyXWRneHJceHi1etSca7qSVpCDUneIkK9je7ZztZGBbG51mjRNhHdojkhwcdx7Xr+WgYajaHSpY7F4aaZPorRdgn5eek5NnIF3mTJ3nD6U"),  # noqa: E501
    (2, (12, 8, 1), 14, 12.0, -100.5, "qIp/jGFIVm6jiXqTZUpXbZyKeZhsT0tznpBqnnJQRHCjjWOWg1Q9c6WIY5GNW0Fqn4d3hY9lSWWijHeDjXhSZqiMe4uJi15ZrZR1g5mKXGexoHdxkoxZaK+pcm6QgmFx"),  # noqa: E501
    (3, (12, 8, 1), 10, 4.0, -45.0, "mbKKdWsuERWzsoFxdygqLJmlfY5fSVpVsZB6fVRfS25gf5VjTjx8eo6ZbndVZ46AeXmSXkiUh3+BcYBsX35jWYikeViGZVdXsFiLn299aHh2kKBmaVZbcYK8hnWFd3eB"),  # noqa: E501
    (4, (8, 12, 3), 6, 1.5, 45.0, "UJNneZxjhLignX3KR3iwdVVfbrOKSXa7f3C9cck/pbu+0MiQYLKTe2QkQo+MwMXpuLa7dJTqwDmlaXaeVo+PKcrIjMmtg7jkeISpJ4Nbyz0mamRmpY3KuZPEnl3BipJ7r4aIno1rie7GpNTqYW6XbFqDJXZCoI1Vh4x/X5R0dVa5sod6ca1b6IRx42qT5Im3RjqCkU+CS4pYecSAUXdebaSZMqQ3boCZy8A9WWKpbYNqb31pmlaNQm+z0htikNldv9emZ4I4QINUeJY3kGyvznouG1JqE5coyn+O0H+YgmiylnNX3N9RpJhpfJBAMUUujcoohFGA2ZRUgKBBxXjn2nus1IKOm4KPltRQsK0if1w7Ti8zSIAXbKgjr6JP2slv"),  # noqa: E501
    (5, (12, 8, 3), 8, 2.0, -7.9, "mLWTtJ5ss3p4wYCstUuZxUGDyVpO51AbZql9jJRXsZdrrapfwXVY2WRo0CpUzwk4T4pZc21LYFhVPnZ4XIymXHSve4Cac5S1WLVqiYt2jm9IlW1Cg01OWEFAZjBmKjaSiZqgfZGTcH6McGBrn5RtpLNRruc/yu0YWWmva6Ochaykjp23bZOvj3GUsoVfz1EhukKy0VmiqX2PlaBncnBfnGaAxiV5sghOY0xmIVxNQD1lXGBDhYUpoa5AjtdQiut2loeik7arwKSWp3qGqX+TobKKmr+n6t28aJGmS3diY21EdpVcdoZtn5SU17SE79FhTmd+ZVx+YmA6VE8+dmE/ho5lvrSXps6tq4Jqp7KVlKHDcrrYW768aaSah4SWnIyA"),  # noqa: E501
)


def reference_motion_blur(image, radius, sigma, angle):
    """NumPy reconstruction, written from ImageMagick's description, one tap at a time (float64)."""
    width = int(2 * math.ceil(radius) + 1)
    weights = np.array([math.exp(-(i * i) / (2 * sigma * sigma)) for i in range(width)])
    weights /= weights.sum()
    height, cols = image.shape[:2]
    rows_grid, cols_grid = np.mgrid[0:height, 0:cols]
    total = np.zeros(image.shape)
    for i, weight in enumerate(weights):
        dx = math.ceil(i * math.cos(math.radians(angle)) - 0.5)
        dy = math.ceil(i * math.sin(math.radians(angle)) - 0.5)
        src_rows = np.clip(rows_grid + dy, 0, height - 1)
        src_cols = np.clip(cols_grid + dx, 0, cols - 1)
        total += weight * image[src_rows, src_cols].astype(np.float64) * 257.0  # 16-bit quanta
    return (np.floor(total + 0.5) // 257).astype(np.uint8)


def test_parameters_are_the_cifar10c_table():
    assert motion.MOTION_BLUR_PARAMS == ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))
    assert motion.MOTION_BLUR_ANGLES == (-45, 45)


def test_kernel_is_imagemagicks_one_sided_gaussian():
    weights = motion.motion_kernel_weights(9, 2.5)
    assert len(weights) == 19  # 2 * ceil(radius) + 1 taps, all on one side
    assert weights.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.all(np.diff(weights) < 0)  # the heaviest tap is the pixel itself
    assert weights[3] / weights[0] == pytest.approx(math.exp(-9 / (2 * 2.5**2)))
    assert len(motion.motion_kernel_weights(6.2, 1.0)) == 15  # ceil, not round


def test_offsets_follow_the_angle_with_half_way_values_rounded_down():
    dx, dy = motion.motion_offsets(tf.constant([0.0, 90.0, 45.0, -135.0], tf.float64), 7)
    dx, dy = dx.numpy(), dy.numpy()
    np.testing.assert_array_equal(dx[0], np.arange(7))
    np.testing.assert_array_equal(dy[0], np.zeros(7))
    np.testing.assert_array_equal(dx[1], np.zeros(7))
    np.testing.assert_array_equal(dy[1], np.arange(7))
    diagonal = np.ceil(np.arange(7) * math.sqrt(0.5) - 0.5)
    np.testing.assert_array_equal(dx[2], diagonal)
    np.testing.assert_array_equal(dy[2], diagonal)
    np.testing.assert_array_equal(dx[3], -np.floor(np.arange(7) * math.sqrt(0.5) + 0.5))


@pytest.mark.parametrize("case", IMAGEMAGICK_CASES, ids=lambda case: f"seed{case[0]}")
def test_matches_real_imagemagick_output(case):
    seed, shape, radius, sigma, angle, encoded = case
    image = np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)
    expected = np.frombuffer(base64.b64decode(encoded), np.uint8).reshape(shape)
    angle_range = (-45.0, 45.0) if -45 <= angle <= 45 else (-135.0, -45.0)
    out = motion.imagemagick_motion_blur(
        tf.constant(image[None]), radius, sigma, tf.constant([angle], tf.float64), angle_range
    )
    np.testing.assert_array_equal(out.numpy()[0], expected)
    np.testing.assert_array_equal(reference_motion_blur(image, radius, sigma, angle), expected)


@pytest.mark.parametrize(
    "radius, sigma, angle_range", [(6, 1.0, (-45.0, 45.0)), (9, 2.5, (-45.0, 45.0)), (14, 12.0, (-135.0, -45.0))]
)
def test_batched_blur_matches_numpy_reconstruction_per_image(radius, sigma, angle_range):
    rng = np.random.RandomState(radius)
    images = rng.randint(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    angles = rng.uniform(*angle_range, size=12)
    out = motion.imagemagick_motion_blur(tf.constant(images), radius, sigma, tf.constant(angles), angle_range)
    expected = np.stack([reference_motion_blur(im, radius, sigma, a) for im, a in zip(images, angles)])
    difference = np.abs(out.numpy().astype(int) - expected)
    assert difference.max() <= 1
    assert (difference > 0).mean() < 1e-3  # float32 sums at a rounding boundary only


def test_constant_image_stays_constant():
    images = tf.fill([2, 32, 32, 3], tf.constant(137, tf.uint8))
    for severity in range(1, 6):
        out = motion.motion_blur(images, severity, tf.constant([3, severity]))
        assert np.all(out.numpy() == 137)


def test_impulse_leaves_the_kernel_as_a_trail():
    image = np.zeros((1, 32, 32, 1), np.uint8)
    image[0, 16, 16] = 255
    radius, sigma = 6, 2.0
    out = motion.imagemagick_motion_blur(tf.constant(image), radius, sigma, tf.constant([0.0], tf.float64),
                                         (-45.0, 45.0)).numpy()[0, :, :, 0]
    weights = motion.motion_kernel_weights(radius, sigma)
    # Output pixel x reads x + i, so the impulse shows up i pixels to its left with weight k_i.
    trail = out[16, 16 - np.arange(len(weights))]
    np.testing.assert_array_equal(trail, np.floor(np.floor(weights * 255 * 257 + 0.5) / 257))
    assert out.sum() == trail.sum()


def test_motion_blur_is_deterministic_per_seed_and_varies_per_image():
    rng = np.random.RandomState(0)
    images = tf.constant(np.repeat(rng.randint(0, 256, (1, 32, 32, 3)).astype(np.uint8), 8, axis=0))
    first = motion.motion_blur(images, 3, tf.constant([1, 2])).numpy()
    again = motion.motion_blur(images, 3, tf.constant([1, 2])).numpy()
    other = motion.motion_blur(images, 3, tf.constant([1, 3])).numpy()
    assert first.dtype == np.uint8 and first.shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(first, again)
    assert np.any(first != other)
    assert len({image.tobytes() for image in first}) > 1  # one angle per image, not per batch


def test_motion_blur_in_tf_data_map_with_unknown_batch():
    images = np.random.RandomState(1).randint(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4).map(
        lambda batch: motion.motion_blur(batch, 5, tf.constant([7, 7]))
    )
    batches = list(dataset.as_numpy_iterator())
    assert [b.shape for b in batches] == [(4, 32, 32, 3), (2, 32, 32, 3)]
    eager = motion.motion_blur(tf.constant(images[:4]), 5, tf.constant([7, 7])).numpy()
    np.testing.assert_array_equal(batches[0], eager)
