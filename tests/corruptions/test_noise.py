"""Noise corruptions: statistics that a wrong parameter or step would break (std, mean, Poisson level
distribution, impulse fraction and channel independence), and seeding."""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from mocse_tf.corruptions import noise
from corruption_cases import load_clean_images, run_modes  # beside this file

SEVERITIES = [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def clean_images():
    """Real CIFAR-10 test images when ../shared is present, else smooth random images (uint8 [256, 32, 32, 3])."""
    return load_clean_images()


SEED = tf.constant([11, 12], tf.int64)


def flat(level, count=64):
    return np.full((count, 32, 32, 3), level, np.uint8)


def generator_output(values):
    """The generator's save: clip to [0, 1], x 255, truncate."""
    return np.uint8(np.clip(values, 0, 1) * 255).astype(np.int64)


# ------------------------------------------------------------------------------------------------ Gaussian


@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_noise_std_and_mean(severity):
    std = [0.04, 0.06, 0.08, 0.09, 0.10][severity - 1]
    got = noise.gaussian_noise(tf.constant(flat(128)), severity, SEED).numpy().astype(np.int64) - 128
    # floor(255 n) has mean -1/2 and variance (255 std)^2 + 1/12 (no clipping this far from 0 and 255).
    expected_std = np.sqrt((255 * std) ** 2 + 1 / 12)
    assert abs(got.mean() + 0.5) < 5 * expected_std / np.sqrt(got.size)
    assert got.std() == pytest.approx(expected_std, rel=0.01)


def test_gaussian_noise_is_independent_across_channels_pixels_and_images():
    got = noise.gaussian_noise(tf.constant(flat(128, 32)), 5, SEED).numpy().astype(np.float64)
    channels = got.reshape(-1, 3).T
    assert np.abs(np.corrcoef(channels) - np.eye(3)).max() < 0.02
    neighbours = np.corrcoef(got[:, :, :-1].ravel(), got[:, :, 1:].ravel())[0, 1]
    assert abs(neighbours) < 0.02
    assert np.mean(got[0] == got[1]) < 0.1


@pytest.mark.parametrize("severity", [1, 5])
def test_gaussian_noise_matches_a_numpy_simulation_on_real_images(clean_images, severity):
    """Clipping at 0 and 255 included: mean absolute change within 2% of the generator's formula."""
    std = [0.04, 0.06, 0.08, 0.09, 0.10][severity - 1]
    x = clean_images / 255.0
    simulated = generator_output(x + np.random.RandomState(0).normal(size=x.shape, scale=std))
    got = noise.gaussian_noise(tf.constant(clean_images), severity, SEED).numpy().astype(np.int64)
    clean = clean_images.astype(np.int64)
    assert np.abs(got - clean).mean() == pytest.approx(np.abs(simulated - clean).mean(), rel=0.02)


# ------------------------------------------------------------------------------------------------ shot


def exact_shot_levels(level, photons):
    """P(output level) for one input level: Poisson pmf pushed through the generator's float64 arithmetic."""
    counts = np.arange(4 * photons)
    pmf = scipy.stats.poisson.pmf(counts, photons * (int(level) / 255.0))
    levels = generator_output(counts / photons)
    return np.bincount(levels, weights=pmf, minlength=256)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_shot_noise_levels_follow_the_poisson_distribution(severity):
    photons = [500, 250, 100, 75, 50][severity - 1]
    inputs = np.array([0, 1, 7, 60, 128, 200, 250, 255], np.uint8)
    images = np.resize(inputs, (48, 32, 32, 3)).astype(np.uint8)  # each level on ~18,000 values
    got = noise.shot_noise(tf.constant(images), severity, SEED).numpy()
    for level in inputs:
        sample = got[images == level].astype(np.int64)
        expected = exact_shot_levels(level, photons)
        observed = np.bincount(sample, minlength=256) / sample.size
        total_variation = 0.5 * np.abs(observed - expected).sum()
        assert total_variation < 0.025, (level, total_variation)
        mean = (np.arange(256) * expected).sum()
        std = np.sqrt(((np.arange(256) - mean) ** 2 * expected).sum())
        assert abs(sample.mean() - mean) < 5 * std / np.sqrt(sample.size) + 1e-9, level
    # Poisson variance: Var(c / lambda) = x / lambda, so 255-scale std ~ 255 sqrt(x / lambda) mid-range.
    mid = got[images == 128].astype(np.float64)
    assert mid.std() == pytest.approx(255 * np.sqrt(128 / 255 / photons), rel=0.05)


def test_shot_noise_alias_tables_reproduce_their_distributions():
    table = noise.shot_noise_table(50)
    thresholds, aliases = table >> 8, table & 255
    for level in (3, 128, 255):
        cells = slice(level * 256, (level + 1) * 256)
        # P(output j) = (keep_j + sum of the other cells' rejected mass aliased to j) / 256.
        keep = thresholds[cells] / 2**23
        probabilities = keep.copy()
        np.add.at(probabilities, aliases[cells], 1 - keep)
        np.testing.assert_allclose(probabilities / 256, exact_shot_levels(level, 50), atol=1e-6)


# ------------------------------------------------------------------------------------------------ impulse


@pytest.mark.parametrize("severity", SEVERITIES)
def test_impulse_noise_fraction_and_independent_channels(severity):
    amount = [0.01, 0.02, 0.03, 0.05, 0.07][severity - 1]
    got = noise.impulse_noise(tf.constant(flat(128)), severity, SEED).numpy()
    assert set(np.unique(got)) == {0, 128, 255}
    n = got.size
    for value in (0, 255):  # salt and pepper each with probability amount / 2
        assert abs(np.mean(got == value) - amount / 2) < 5 * np.sqrt(amount / 2 / n)
    # Channels are hit independently: the number of hit channels per pixel is Binomial(3, amount).
    hits = (got != 128).sum(axis=-1).ravel()
    for k in (1, 2):
        expected = scipy.stats.binom.pmf(k, 3, amount)
        assert abs(np.mean(hits == k) - expected) < 5 * np.sqrt(expected / hits.size) + 1e-4, k


def test_impulse_noise_keeps_other_values_exactly(clean_images):
    got = noise.impulse_noise(tf.constant(clean_images), 3, SEED).numpy()
    changed = got != clean_images
    assert np.isin(got[changed], [0, 255]).all()
    assert 0.02 < changed.mean() < 0.04


# ------------------------------------------------------------------------------------------------ speckle


@pytest.mark.parametrize("severity", SEVERITIES)
def test_speckle_noise_scales_with_the_pixel_value(severity):
    std = [0.06, 0.1, 0.12, 0.16, 0.2][severity - 1]
    images = flat(60)
    images[:, :, :, 1] = 0
    got = noise.speckle_noise(tf.constant(images), severity, SEED).numpy().astype(np.int64)
    assert (got[..., 1] == 0).all()  # x + x n with x = 0
    change = got[..., 0] - 60
    expected_std = np.sqrt((60 * std) ** 2 + 1 / 12)
    assert abs(change.mean() + 0.5) < 5 * expected_std / np.sqrt(change.size)
    assert change.std() == pytest.approx(expected_std, rel=0.015)


# ------------------------------------------------------------------------------------------------ seeding


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"])
def test_noise_is_deterministic_per_seed_and_the_same_in_every_mode(clean_images, name):
    function = getattr(noise, name)
    images = clean_images[:100]
    outputs = run_modes(function, images, 4, seed=(3, 4))
    for mode, got in outputs.items():
        np.testing.assert_array_equal(got, outputs["eager"], err_msg=mode)
    other = function(tf.constant(images), 4, tf.constant([3, 5], tf.int64)).numpy()
    assert np.mean(other != outputs["eager"]) > 0.01
    twins = function(tf.constant(np.stack([images[0]] * 2)), 4, tf.constant([3, 4], tf.int64)).numpy()
    assert (twins[0] != twins[1]).any(), "identical images in one batch must get independent noise"


@pytest.mark.parametrize("name", ["gaussian_noise", "speckle_noise"])
def test_continuous_noise_rounds_the_same_in_eager_and_graph_mode_over_many_draws(clean_images, name):
    """A fused multiply-add in the traced graph (x + x * n) moved ~1 value in 3 million to another uint8 than
    eager mode; 16 seeds x 256 images x the highest severity give ~10^7 values, enough to see it."""
    function = getattr(noise, name)
    traced = tf.function(lambda x, seed: function(x, 5, seed), autograph=False)
    images = tf.constant(clean_images)
    for first in range(16):
        seed = tf.constant([first, 7], tf.int64)
        np.testing.assert_array_equal(traced(images, seed).numpy(), function(images, 5, seed).numpy(), str(first))
