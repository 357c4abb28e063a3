"""Norm-ball geometry of the attacks: steepest-ascent directions, projections onto the epsilon ball and [0, 1].

Every function acts per example on batches [B, ...] (any rank >= 2) and reduces over all non-batch axes.
"""

import tensorflow as tf

from mocse_tf.errors import check_choice

NORMS = ("linf", "l2")

# Guards divisions by a zero norm (a zero gradient or a zero perturbation).
_TINY = 1e-12


def check_norm(norm):
    check_choice("norm", norm, NORMS)


def per_example(values, like):
    """Reshapes per-example values [B] to [B, 1, ..., 1] so they broadcast against `like` [B, ...]."""
    return tf.reshape(values, [-1] + [1] * (like.shape.rank - 1))


def l2_norm(x):
    """Euclidean norm of each example, shape [B]."""
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=list(range(1, x.shape.rank))))


def linf_norm(x):
    """Largest absolute entry of each example, shape [B]."""
    return tf.reduce_max(tf.abs(x), axis=list(range(1, x.shape.rank)))


def unit_direction(direction, norm):
    """Scales each example's `direction` to norm 1 in `norm` (zero stays zero)."""
    size = linf_norm(direction) if norm == "linf" else l2_norm(direction)
    return direction / per_example(size + _TINY, direction)


def ascent_direction(grad, norm):
    """The steepest-ascent step of length 1 in `norm`: sign(g) for L-inf, g / ||g||_2 for L2."""
    if norm == "linf":
        return tf.sign(grad)
    return unit_direction(grad, "l2")


def project(x_adv, x, eps, norm):
    """Projects x_adv onto {||x_adv - x|| <= eps} and then onto [0, 1].

    For L-inf both sets are boxes, so this is the exact projection onto their intersection. For L2, clipping to
    [0, 1] only moves coordinates towards x (x itself lies in [0, 1]), so the result stays in the ball.
    """
    delta = x_adv - x
    if norm == "linf":
        delta = tf.clip_by_value(delta, -eps, eps)
    else:
        scale = tf.minimum(1.0, eps / (l2_norm(delta) + _TINY))
        delta = delta * per_example(scale, delta)
    return tf.clip_by_value(x + delta, 0.0, 1.0)
