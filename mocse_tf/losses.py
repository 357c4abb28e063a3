"""Losses shared by training and attacks: class cross-entropy and the MoCSE experts' one-vs-rest BCE.

Every function returns one value per example (shape [B]); callers average. Expert logits have shape
[B, N, 2]: index 0 is "not class k", index 1 is "class k".
"""

import tensorflow as tf

from mocse_tf.labels import as_labels


def class_cross_entropy(labels, logits):
    """Softmax cross-entropy of integer labels [B] against class logits [B, N]."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=as_labels(labels), logits=tf.cast(logits, tf.float32))


def one_vs_rest_targets(labels, num_classes):
    """Expert k's binary target for each example: 1 where the label is k, else 0; shape [B, N], int32."""
    return tf.one_hot(as_labels(labels), num_classes, dtype=tf.int32)


def expert_binary_cross_entropy(labels, expert_logits):
    """Mean over experts of each expert's binary cross-entropy on its own one-vs-rest target; shape [B].

    Each expert's two logits are a 2-way softmax, so this is exactly the sigmoid BCE of the margin
    z_true - z_false. The mean (not the sum) keeps the term on the scale of the class cross-entropy
    whatever N is; `bce_weight = N` recovers the sum.
    """
    expert_logits = tf.cast(expert_logits, tf.float32)
    targets = one_vs_rest_targets(labels, expert_logits.shape[1])
    per_expert = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=expert_logits)
    return tf.reduce_mean(per_expert, axis=1)


def expert_binary_accuracy(labels, expert_logits):
    """Fraction of experts whose binary decision (argmax of its 2 logits) matches its target; shape [B]."""
    targets = one_vs_rest_targets(labels, expert_logits.shape[1])
    decisions = tf.cast(tf.argmax(expert_logits, axis=-1), tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(decisions, targets), tf.float32), axis=1)


def mocse_total_loss(labels, outputs, bce_weight=1.0):
    """Per-example training loss of a network's output dict: CE of the logits (+ bce_weight * expert BCE)."""
    loss = class_cross_entropy(labels, outputs["logits"])
    if "expert_logits" in outputs and bce_weight:
        loss = loss + bce_weight * expert_binary_cross_entropy(labels, outputs["expert_logits"])
    return loss
