"""Train-step and inference images/s of both architectures, trainer versus a bare TF loop, in one run.

Usage: python bench/train_throughput.py [--arch=preact_resnet18,mocse] [--width=0] [--batch=128]
       [--infer_batch=500] [--steps=20]
The bare baseline is a tf.function with a GradientTape and the same SGD optimizer on the same network: the
trainer's `train_step` must stay at or above 0.9x of it. Figures are ratios measured back to back, because
this machine is shared and absolute numbers drift.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from mocse_tf import losses  # noqa: E402
from mocse_tf.models import build_network  # noqa: E402
from mocse_tf.training.trainer import RobustTrainer  # noqa: E402

flags.DEFINE_list("arch", ["preact_resnet18", "mocse"], "Architectures to measure.")
flags.DEFINE_integer("width", 0, "Width (0 = each architecture's default: 64, or 16 per expert).")
flags.DEFINE_integer("batch", 128, "Training batch size.")
flags.DEFINE_integer("infer_batch", 500, "Inference batch size.")
flags.DEFINE_integer("steps", 20, "Timed steps per measurement (after 3 warm-up steps).")
flags.DEFINE_bool("jit_compile", False, "XLA for the train steps.")
FLAGS = flags.FLAGS


def timed(fn, steps, warmup=3):
    for _ in range(warmup):
        fn()
    started = time.perf_counter()
    for _ in range(steps):
        fn()
    return time.perf_counter() - started


def bare_step_fn(network, optimizer, images, labels):
    @tf.function(jit_compile=FLAGS.jit_compile)
    def step():
        with tf.GradientTape() as tape:
            outputs = network(images, training=True)
            loss = tf.reduce_mean(losses.mocse_total_loss(labels, outputs, 1.0))
        grads = tape.gradient(loss, network.trainable_variables)
        optimizer.apply_gradients(zip(grads, network.trainable_variables))
        return loss

    return lambda: step().numpy()


def trainer_step_fn(network, images, labels):
    trainer = RobustTrainer(network)
    trainer.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=5e-4),
                    jit_compile=FLAGS.jit_compile)
    iterator = iter(tf.data.Dataset.from_tensors((images, labels)).repeat())
    trainer.make_train_function()
    return lambda: float(trainer.train_function(iterator)["loss"])


def main(_):
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (FLAGS.batch, 32, 32, 3), dtype=np.uint8))
    labels = tf.constant(rng.integers(0, 10, FLAGS.batch), tf.int32)
    infer_images = tf.constant(rng.integers(0, 256, (FLAGS.infer_batch, 32, 32, 3), dtype=np.uint8))
    print(f"{'arch':16s} {'width':>5s} {'bare train':>11s} {'trainer':>9s} {'ratio':>6s} "
          f"{'inference':>10s}   (images/s; train batch {FLAGS.batch}, inference batch {FLAGS.infer_batch})")
    for arch in FLAGS.arch:
        width = FLAGS.width or None
        network = build_network(arch, width=width)
        bare = bare_step_fn(network, keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=5e-4),
                            tf.cast(images, tf.float32), labels)
        bare_rate = FLAGS.batch * FLAGS.steps / timed(bare, FLAGS.steps)
        trainer = trainer_step_fn(build_network(arch, width=width), images, labels)
        trainer_rate = FLAGS.batch * FLAGS.steps / timed(trainer, FLAGS.steps)

        infer = tf.function(lambda x: network(tf.cast(x, tf.float32), training=False)["logits"])
        infer_steps = max(3, FLAGS.steps // 4)
        infer_rate = FLAGS.infer_batch * infer_steps / timed(lambda: infer(infer_images).numpy(), infer_steps)
        shown_width = width or (64 if arch == "preact_resnet18" else 16)
        print(f"{arch:16s} {shown_width:5d} {bare_rate:11.1f} {trainer_rate:9.1f} "
              f"{trainer_rate / bare_rate:6.2f} {infer_rate:10.1f}", flush=True)


if __name__ == "__main__":
    app.run(main)
