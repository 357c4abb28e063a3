"""The CIFAR-10-C noise corruptions: Gaussian, shot (Poisson), impulse (salt and pepper) and speckle noise.

All work on x / 255 in float64 like the generator (which matters for shot noise: k / lambda * 255 lands exactly
on integers, where float32 would truncate differently), draw independently per pixel and channel with stateless
ops, clip to [0, 1], multiply by 255 and truncate.
"""

import tensorflow as tf

from mocse_tf.corruptions import common

GAUSSIAN_STDS = (0.04, 0.06, 0.08, 0.09, 0.10)
SHOT_PHOTONS = (500, 250, 100, 75, 50)
IMPULSE_AMOUNTS = (0.01, 0.02, 0.03, 0.05, 0.07)
SPECKLE_STDS = (0.06, 0.10, 0.12, 0.16, 0.20)


def gaussian_noise(images, severity, seed):
    """x + N(0, std) per pixel and channel."""
    x = common.to_unit_float(images, tf.float64)
    noise = tf.random.stateless_normal(tf.shape(x), common.as_seed(seed), stddev=GAUSSIAN_STDS[severity - 1], dtype=tf.float64)
    return common.from_unit_float(x + noise)


def shot_noise(images, severity, seed):
    """Poisson(x * lambda) / lambda per pixel and channel."""
    photons = float(SHOT_PHOTONS[severity - 1])
    x = common.to_unit_float(images, tf.float64)
    counts = tf.random.stateless_poisson(tf.shape(x), common.as_seed(seed), lam=x * photons, dtype=tf.float64)
    return common.from_unit_float(counts / photons)


def impulse_noise(images, severity, seed):
    """scikit-image salt & pepper: each value (pixel and channel apart) is replaced with probability `amount`,
    by 1.0 or 0.0 with probability 1/2 each."""
    amount = IMPULSE_AMOUNTS[severity - 1]
    flip_seed, salt_seed = common.split_seed(seed, 2)
    x = common.to_unit_float(images, tf.float64)
    flipped = tf.random.stateless_uniform(tf.shape(x), flip_seed, dtype=tf.float64) < amount
    salted = tf.random.stateless_uniform(tf.shape(x), salt_seed, dtype=tf.float64) < 0.5
    replacement = tf.where(salted, tf.ones_like(x), tf.zeros_like(x))
    return common.from_unit_float(tf.where(flipped, replacement, x))


def speckle_noise(images, severity, seed):
    """x + x * N(0, std) per pixel and channel."""
    x = common.to_unit_float(images, tf.float64)
    noise = tf.random.stateless_normal(tf.shape(x), common.as_seed(seed), stddev=SPECKLE_STDS[severity - 1], dtype=tf.float64)
    return common.from_unit_float(x + x * noise)
