"""Trains a tiny 2-class MoCSE for a few steps on one device or under MirroredStrategy over 2 logical CPUs.

Run as its own process (a logical-device split cannot be undone): python mirrored_driver.py REPLICAS OUT.npz
It uses bin/train's own pieces (strategy, trainer, optimizer, pipeline) and saves the trainable weights
before and after training and the last logged loss.

The data are shuffled, augmented batches X_1, X_2, ... of 8 images. One device trains on X_t. Two replicas train on the
global batch [X_t; X_t], so each replica sees exactly X_t: its forward pass, BatchNorm statistics and gradient
are the one-device ones, and the two runs agree to float rounding exactly when the replica gradients are
combined into the mean over the global batch (each replica's loss divided by 2, gradients summed). Dividing
by the wrong count would double or halve every update.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

REPLICAS = int(sys.argv[1])
if REPLICAS > 1:  # before any other TensorFlow work
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * REPLICAS)

import keras  # noqa: E402

from mocse_tf.data import load_arrays, make_pipeline  # noqa: E402
from mocse_tf.training import distribute, run  # noqa: E402
from mocse_tf.training.config import TrainConfig  # noqa: E402

NUM_CLASSES = 2  # few experts keep each replica's graph quick to trace
STEPS = 4
PER_REPLICA_BATCH = 8


def main(out_path):
    import numpy as np

    config = TrainConfig(arch="mocse", width=2, batch_size=PER_REPLICA_BATCH * REPLICAS, learning_rate=0.05,
                         lr_schedule="multistep", epochs=1, seed=7, bce_weight=0.5,
                         strategy="mirrored" if REPLICAS > 1 else "default")
    strategy = distribute.make_strategy(config.strategy)
    assert strategy.num_replicas_in_sync == REPLICAS, strategy.num_replicas_in_sync
    distribute.check_global_batch(config.batch_size, strategy)
    data = load_arrays("synthetic", "train", seed=0, num_examples=300)
    keep = data.labels < NUM_CLASSES
    # Shuffled and augmented like bin/train: the trainer must not let Keras open an extra iterator before
    # training under a strategy, or the mirrored run would start one reshuffle later than the one-device run.
    batches = make_pipeline(data.images[keep], data.labels[keep], PER_REPLICA_BATCH, training=True,
                            augment="standard", seed=3)
    if REPLICAS > 1:
        batches = batches.map(lambda x, y: (tf.concat([x] * REPLICAS, 0), tf.concat([y] * REPLICAS, 0)))

    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        trainer = run.build_trainer(config, NUM_CLASSES)
        optimizer = run.make_optimizer(config, STEPS)
        trainer.compile(optimizer=optimizer, jit_compile=False)
    initial = np.concatenate([w.numpy().ravel() for w in trainer.network.trainable_weights])
    history = trainer.fit(batches, epochs=1, steps_per_epoch=STEPS, verbose=0).history
    final = np.concatenate([w.numpy().ravel() for w in trainer.network.trainable_weights])
    np.savez(out_path, replicas=strategy.num_replicas_in_sync, steps=int(optimizer.iterations.numpy()),
             loss=history["loss"][-1], bce=history["bce"][-1], initial=initial, final=final)


if __name__ == "__main__":
    main(sys.argv[2])
