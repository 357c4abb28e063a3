"""Batched top-1 accuracy of one or more models over a tf.data pipeline that keeps the models busy.

The pipeline (prefetched, with parallel reads or corruption) prepares the next batch while the models run on the
current one; every model sees each batch once, so a batch that was expensive to make is shared by all models.
Only the count of correct predictions leaves the graph.
"""

import tensorflow as tf

from mocse_tf.labels import LABEL_DTYPE, top1_correct

IMAGE_SPEC = tf.TensorSpec([None, 32, 32, 3], tf.uint8)
LABEL_SPEC = tf.TensorSpec([None], LABEL_DTYPE)


def correct_counter(classifier):
    """A tf.function (uint8 images [B, 32, 32, 3], labels [B]) -> int64 number of correct top-1 answers."""
    predict = classifier.logits_fn()

    @tf.function(input_signature=[IMAGE_SPEC, LABEL_SPEC], autograph=False)
    def count_correct(images, labels):
        return tf.reduce_sum(tf.cast(top1_correct(predict(images)["logits"], labels), tf.int64))

    return count_correct


def count_correct(counters, dataset, on_batch=None):
    """Runs every counter on every batch of `dataset`; returns ([correct per counter], total examples).

    `on_batch(images, batch_size)` is called after each batch (progress bars, sample collection).
    """
    correct = [0] * len(counters)
    total = 0
    for images, labels in dataset:
        batch_size = int(tf.shape(labels)[0])
        for index, counter in enumerate(counters):
            correct[index] += int(counter(images, labels))
        total += batch_size
        if on_batch is not None:
            on_batch(images, batch_size)
    return correct, total


def accuracy(counter, dataset):
    """Top-1 accuracy of one counter (see `correct_counter`) over a data set of (images, labels) batches."""
    (correct,), total = count_correct([counter], dataset)
    return correct / total
