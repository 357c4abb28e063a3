"""The CIFAR-10-C noise corruptions: Gaussian, shot (Poisson), impulse (salt and pepper) and speckle noise.

Each draws independently per pixel and channel with stateless ops, clips to [0, 1], multiplies by 255 and
truncates. The generator works in float64; for the continuous noises float32 gives the same distribution (a
value lands within float32 rounding of a truncation boundary with probability ~3e-5), so they use float32, which
halves the cost of drawing. Shot noise takes its output levels from the generator's own float64 arithmetic.
"""

import functools

import numpy as np
import tensorflow as tf

from mocse_tf.corruptions import common

GAUSSIAN_STDS = (0.04, 0.06, 0.08, 0.09, 0.10)
SHOT_PHOTONS = (500, 250, 100, 75, 50)
IMPULSE_AMOUNTS = (0.01, 0.02, 0.03, 0.05, 0.07)
SPECKLE_STDS = (0.06, 0.10, 0.12, 0.16, 0.20)


def gaussian_noise(images, severity, seed):
    """x + N(0, std) per pixel and channel."""
    x = common.to_unit_float(images)
    noise = tf.random.stateless_normal(tf.shape(x), common.as_seed(seed), stddev=GAUSSIAN_STDS[severity - 1])
    return common.from_unit_float(x + noise)


def speckle_noise(images, severity, seed):
    """x + x * N(0, std) per pixel and channel, computed as x * (1 + noise).

    Written as a product of a sum because `x + x * noise` is an a * b + c that a traced graph contracts into
    one fused multiply-add while eager mode rounds twice, so 1 value in ~10^6 truncated to another uint8 in
    tf.function than in eager mode; an add followed by a multiply rounds the same way in every mode.
    """
    x = common.to_unit_float(images)
    noise = tf.random.stateless_normal(tf.shape(x), common.as_seed(seed), stddev=SPECKLE_STDS[severity - 1])
    return common.from_unit_float(x * (1.0 + noise))


def impulse_noise(images, severity, seed):
    """scikit-image salt & pepper: each value (pixel and channel apart) is replaced with probability `amount`,
    by 1.0 (255) or 0.0 (0) with probability 1/2 each; other values pass unchanged (k / 255 * 255 == k)."""
    amount = IMPULSE_AMOUNTS[severity - 1]
    # One uniform per value: u < amount replaces it, and u < amount / 2 (half of those, independently of
    # everything else) makes it salt.
    u = tf.random.stateless_uniform(tf.shape(images), common.as_seed(seed))
    salt_or_pepper = tf.where(u < amount / 2, tf.constant(255, tf.uint8), tf.constant(0, tf.uint8))
    return tf.where(u < amount, salt_or_pepper, images)


# --- shot noise ---------------------------------------------------------------------------------------------


def alias_table(probabilities):
    """Walker / Vose alias table of one discrete distribution over len(probabilities) outcomes.

    Returns (keep, alias): draw a cell i uniformly and v ~ U(0, 1); the outcome is i if v < keep[i], else
    alias[i]. Exact up to the float precision of `keep`.
    """
    size = len(probabilities)
    scaled = np.asarray(probabilities, np.float64) * size / np.sum(probabilities)
    keep = np.ones(size)
    alias = np.arange(size)
    small = [i for i in range(size) if scaled[i] < 1.0]
    large = [i for i in range(size) if scaled[i] >= 1.0]
    while small and large:
        low, high = small.pop(), large.pop()
        keep[low], alias[low] = scaled[low], high
        scaled[high] -= 1.0 - scaled[low]
        (small if scaled[high] < 1.0 else large).append(high)
    return keep, alias  # cells left over hold probability 1 up to rounding: keep = 1


@functools.lru_cache(maxsize=None)
def shot_noise_table(photons):
    """Alias tables of the output level given the input level k, packed in one int32 array [256 * 256].

    For input level k the generator outputs uint8(clip(c / photons, 0, 1) * 255) with c ~ Poisson(photons *
    k / 255), all in float64; the level probabilities come from the Poisson pmf and that exact arithmetic.
    Entry k * 256 + i holds (threshold << 8) | alias of cell i of level k's alias table, with threshold =
    round(keep * 2^23) capped at 2^23 - 1 so that the packed value stays a positive int32.
    """
    counts = np.arange(photons + 1)
    levels = np.uint8(np.clip(counts / photons, 0, 1) * 255)  # the generator's exact float64 arithmetic
    log_factorials = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, photons + 1)))])
    packed = []
    for k in range(256):
        mean = photons * (k / 255.0)
        pmf = np.exp(counts * np.log(mean) - mean - log_factorials) if mean > 0 else (counts == 0).astype(float)
        level_pmf = np.bincount(levels, weights=pmf, minlength=256)
        level_pmf[255] = max(0.0, 1.0 - level_pmf[:255].sum())  # counts >= photons all saturate at 255
        keep, alias = alias_table(level_pmf)
        threshold = np.minimum(np.round(keep * 2**23).astype(np.int64), 2**23 - 1)
        packed.append((threshold << 8) | alias)
    return np.concatenate(packed).astype(np.int32)


def shot_noise(images, severity, seed):
    """Poisson(x * lambda) / lambda per pixel and channel, sampled from the 256 output levels' distribution.

    The input has only 256 levels, so the output distribution of each level is tabulated once (from the
    Poisson pmf and the generator's float64 scaling and truncation) and sampled with the alias method: exact
    in distribution up to ~5e-10 per level, and several times faster than tf.random.stateless_poisson here.
    One random int32 per value gives both the cell (low 8 bits) and a 23-bit coin (the bits above).
    """
    table = tf.constant(shot_noise_table(SHOT_PHOTONS[severity - 1]))
    bits = tf.random.stateless_uniform(tf.shape(images), common.as_seed(seed), minval=None, maxval=None, dtype=tf.int32)
    cells = tf.bitwise.bitwise_and(bits, 255)
    coins = tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 8), 2**23 - 1)
    entry = tf.gather(table, tf.cast(images, tf.int32) * 256 + cells)
    keep_cell = coins < tf.bitwise.right_shift(entry, 8)
    return tf.cast(tf.where(keep_cell, cells, tf.bitwise.bitwise_and(entry, 255)), tf.uint8)
