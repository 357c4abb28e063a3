"""Class labels: the one integer dtype they have everywhere (data sets, pipelines, evaluation sources, attacks,
losses, metrics) and the one top-1 test that every accuracy in the project counts."""

import tensorflow as tf

LABEL_DTYPE = tf.int64
NUMPY_LABEL_DTYPE = LABEL_DTYPE.as_numpy_dtype


def as_labels(labels):
    """Integer labels of any integer dtype, shape [B] or [B, 1], as a LABEL_DTYPE tensor [B]."""
    return tf.cast(tf.reshape(labels, [-1]), LABEL_DTYPE)


def top1_correct(logits, labels):
    """bool [B]: the class with the highest logit is the label."""
    return tf.equal(tf.argmax(logits, axis=-1, output_type=LABEL_DTYPE), as_labels(labels))
