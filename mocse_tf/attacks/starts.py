"""Starting points of the attacks, drawn with stateless random ops so that one seed gives one result in eager
mode, inside tf.function and inside a Keras train_step alike."""

import tensorflow as tf

from mocse_tf.attacks.geometry import per_example, unit_direction
from mocse_tf.errors import UsageError


def as_seed(seed):
    """A stateless-op seed (int64 tensor of shape [2]) from a Python int, a pair, or a tensor of shape [2].

    In a train_step, pass e.g. `tf.stack([base_seed, optimizer.iterations])` so every step draws anew.
    """
    if isinstance(seed, bool):
        raise UsageError(f"seed must be an int or a pair of ints, got {seed!r}")
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int64)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank != 1 or seed.shape[0] != 2:
        raise UsageError(f"seed must be an int or a pair of ints (shape [2]), got shape {seed.shape}")
    return seed


def derived_seed(seed, index):
    """The seed of restart (or sub-draw) `index`: independent of the others, the same in every mode."""
    return tf.random.experimental.stateless_fold_in(seed, index)


def uniform_linf_start(x, eps, seed):
    """x plus noise uniform in [-eps, eps] per entry: uniform in the L-inf ball (Madry et al.)."""
    return x + tf.random.stateless_uniform(tf.shape(x), seed, -eps, eps, dtype=x.dtype)


def uniform_l2_start(x, eps, seed):
    """x plus a point uniform in the L2 ball of radius eps: a uniform direction (normalised Gaussian) at radius
    eps * u^(1/d), with d the number of entries per example. In d = 3072 dimensions that radius exceeds
    0.999 * eps with probability 0.95 (1 - 0.999^3072), so the start lies practically on the sphere."""
    direction = unit_direction(tf.random.stateless_normal(tf.shape(x), derived_seed(seed, 0), dtype=x.dtype), "l2")
    dims = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), x.dtype)
    u = tf.random.stateless_uniform(tf.shape(x)[:1], derived_seed(seed, 1), dtype=x.dtype)
    radius = eps * tf.pow(u, 1.0 / dims)
    return x + direction * per_example(radius, x)


def uniform_start(x, eps, norm, seed):
    """A start uniform in the epsilon ball of `norm` (not yet clipped to [0, 1])."""
    return uniform_linf_start(x, eps, seed) if norm == "linf" else uniform_l2_start(x, eps, seed)


def sphere_start(x, eps, norm, seed):
    """The start of APGD (Croce & Hein): a random point on the sphere of radius eps; for L-inf, uniform noise
    rescaled so its largest entry is eps, for L2 a normalised Gaussian times eps."""
    if norm == "linf":
        noise = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0, dtype=x.dtype)
    else:
        noise = tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype)
    return x + eps * unit_direction(noise, norm)


def gaussian_start(x, sigma, seed):
    """x plus N(0, sigma^2) noise per entry: the TRADES start (sigma = 0.001), which moves the KL objective off
    its flat minimum at x."""
    return x + sigma * tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype)
