"""tf.data input pipelines over in-memory arrays: cache, seeded shuffle, batch, batched augmentation, prefetch.

Pixels stay uint8 all the way: scaling and normalisation happen inside the model, so SavedModels take raw pixels.
"""

import numpy as np
import tensorflow as tf

from mocse_tf.data import augment as augment_lib
from mocse_tf.errors import UsageError
from mocse_tf.labels import NUMPY_LABEL_DTYPE


def make_pipeline(images, labels, batch_size, *, training, augment="standard", seed=0, drop_remainder=None,
                  cache=True):
    """Returns a tf.data.Dataset of (images uint8 [B, 32, 32, 3], labels int64 [B]).

    training=True: shuffle (seeded, a different order each epoch), batch (dropping the last partial batch
    unless drop_remainder=False), augment with policy `augment`, prefetch. training=False: batch in order, no
    augmentation, keep the last partial batch. cache: keep the un-augmented examples in memory after the first
    pass. The same arguments always give the same batches, epoch by epoch.
    """
    images, labels = _checked_arrays(images, labels)
    augment_lib.check_policy(augment)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise UsageError(f"batch size must be a positive integer, got {batch_size!r} (e.g. `batch_size`=128)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"the pipeline seed must be a non-negative integer, got {seed!r} (e.g. `seed`=0)")
    if drop_remainder is None:
        drop_remainder = training
    if training and drop_remainder and len(images) < batch_size:
        raise UsageError(
            f"{len(images)} training images cannot fill one batch of {batch_size}: lower `batch_size` or use "
            "more examples"
        )

    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(NUMPY_LABEL_DTYPE)))
    if cache:
        # Before shuffling and augmentation, so only the fixed, un-augmented examples are cached.
        dataset = dataset.cache()
    if not training:
        return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)

    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if augment != "none":
        augmenter = augment_lib.BatchAugmenter(augment, layer_seed=seed)
        # One stateless seed per batch, new each epoch yet fixed by `seed`.
        batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, batch_seeds)

        def augment_batch(batch, batch_seed):
            images, labels = batch
            return augmenter(images, batch_seed), labels

        if augmenter.keras_layers:
            # Keras layers hold random state: batches must pass through them one at a time, in order.
            dataset = dataset.map(augment_batch)
        else:
            dataset = dataset.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _checked_arrays(images, labels):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise UsageError(
            f"pipeline images must be uint8 [N, 32, 32, 3], got {images.dtype} {list(images.shape)}: pass raw "
            "pixels (e.g. load_arrays(...).images)"
        )
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise UsageError(
            f"pipeline labels must be integers [N] with N = {len(images)} (one per image), got {labels.dtype} "
            f"{list(labels.shape)}"
        )
    if len(images) == 0:
        raise UsageError("the pipeline got 0 images: check the data set and `num_examples`")
    return images, labels
