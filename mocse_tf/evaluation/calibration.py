"""Expected calibration error (Guo et al. 2017, "On Calibration of Modern Neural Networks"), 15 equal-width bins.

A prediction's confidence is its top softmax probability; bin m (m = 1..M) holds the confidences in ((m-1)/M, m/M].
ECE = sum_m |B_m| / n * |accuracy(B_m) - mean confidence(B_m)|. The evaluation accumulates, per bin, the count,
the sum of confidences and the number of correct predictions, batch by batch inside the graph, so that ECE over
any number of batches is exact and costs no second pass.
"""

import numpy as np
import tensorflow as tf

from mocse_tf.labels import top1_correct

NUM_BINS = 15
COUNT, CONFIDENCE_SUM, CORRECT_SUM = 0, 1, 2  # rows of a bin-statistics array [3, num_bins]


def bin_statistics(logits, labels, num_bins=NUM_BINS):
    """float64 [3, num_bins] tensor: per bin, the number of predictions, their summed confidence and the number
    that are correct, for one batch of class logits [B, N] and integer labels [B]."""
    logits = tf.cast(logits, tf.float32)
    probabilities = tf.nn.softmax(logits, axis=-1)
    confidence = tf.reduce_max(probabilities, axis=-1)
    correct = tf.cast(top1_correct(logits, labels), tf.float64)
    # Bin of c: ceil(c * M) - 1, so a confidence exactly on an edge m/M belongs to bin m (right-closed).
    index = tf.cast(tf.math.ceil(tf.cast(confidence, tf.float64) * num_bins), tf.int32) - 1
    index = tf.clip_by_value(index, 0, num_bins - 1)
    confidence = tf.cast(confidence, tf.float64)
    return tf.stack([
        tf.math.unsorted_segment_sum(tf.ones_like(confidence), index, num_bins),
        tf.math.unsorted_segment_sum(confidence, index, num_bins),
        tf.math.unsorted_segment_sum(correct, index, num_bins),
    ])


def expected_calibration_error(statistics):
    """ECE in [0, 1] from accumulated bin statistics [3, num_bins] (NumPy or tensor); NaN when they are empty."""
    statistics = np.asarray(statistics, dtype=np.float64)
    counts = statistics[COUNT]
    total = counts.sum()
    if total == 0:
        return float("nan")
    gaps = np.abs(statistics[CORRECT_SUM] - statistics[CONFIDENCE_SUM])  # = |B_m| * |acc - conf|
    return float(gaps.sum() / total)


def top1_correct_count(statistics):
    """Number of correct top-1 predictions counted in bin statistics [3, num_bins]."""
    return int(round(float(np.asarray(statistics)[CORRECT_SUM].sum())))


class CalibratedCounter:
    """A top-1 counter for `accuracy.count_correct` that also accumulates ECE bin statistics from the same
    forward pass: call `reset()` before a data set, read `ece()` after it."""

    def __init__(self, classifier, num_bins=NUM_BINS):
        from mocse_tf.evaluation.accuracy import IMAGE_SPEC, LABEL_SPEC

        predict = classifier.logits_fn()
        self.num_bins = num_bins

        @tf.function(input_signature=[IMAGE_SPEC, LABEL_SPEC], autograph=False)
        def batch_statistics(images, labels):
            return bin_statistics(predict(images)["logits"], labels, num_bins)

        self._batch_statistics = batch_statistics
        self.reset()

    def reset(self):
        self.statistics = np.zeros((3, self.num_bins), dtype=np.float64)

    def __call__(self, images, labels):
        statistics = self._batch_statistics(images, labels).numpy()
        self.statistics += statistics
        return top1_correct_count(statistics)

    def ece(self):
        return expected_calibration_error(self.statistics)
