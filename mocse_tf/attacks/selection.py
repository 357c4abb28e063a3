"""Keeps each example's worst case over the points an attack visits (its iterates and its restarts).

keep="loss": the point with the highest attack loss. keep="misclassified": a point where the attack succeeded
if there is one (the highest-loss such point), otherwise the highest-loss point; robust accuracy then counts
an example as robust only if no visited point fooled the network. keep="last" (PGD and FGSM only) returns the
final iterate of a single run, as Madry et al.'s training does, and tracks nothing.
"""

import collections

import tensorflow as tf

from mocse_tf.attacks.geometry import per_example
from mocse_tf.errors import check_choice

KEEPS = ("last", "loss", "misclassified")

WorstCase = collections.namedtuple("WorstCase", ["x", "loss", "success"])


def check_keep(keep, allowed=KEEPS):
    check_choice("keep", keep, allowed)


def empty_worst_case(x):
    """Nothing visited yet: any real point replaces it (its loss is -inf)."""
    batch = tf.shape(x)[:1]
    return WorstCase(x, tf.fill(batch, tf.constant(-float("inf"), tf.float32)), tf.zeros(batch, tf.bool))


def is_worse(candidate, current, keep):
    """Per example, whether `candidate` is a worse case for the network than `current` (strictly)."""
    higher_loss = candidate.loss > current.loss
    if keep == "loss":
        return higher_loss
    newly_fooled = tf.logical_and(candidate.success, tf.logical_not(current.success))
    same_outcome = tf.equal(candidate.success, current.success)
    return tf.logical_or(newly_fooled, tf.logical_and(same_outcome, higher_loss))


def keep_worse(current, candidate, keep):
    """Per example, the worse of `current` and `candidate` (ties keep `current`, the earlier point)."""
    worse = is_worse(candidate, current, keep)
    return WorstCase(
        tf.where(per_example(worse, current.x), candidate.x, current.x),
        tf.where(worse, candidate.loss, current.loss),
        tf.where(worse, candidate.success, current.success),
    )
