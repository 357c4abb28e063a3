"""Images/s of the Square attack and of FAB-T (9 targets) on real CIFAR-10 test images through a small conv net.

Usage: python bench/square_fab.py [--local_dir=../shared/data/cifar10-mini] [--images=100] [--queries=1000]
       [--fab_steps=100] [--targets=9] [--arch=small] [--width=16]
The network is untrained and attacked on its own predictions, so every image starts correctly classified.
"worst case" runs at eps = 0, where no image can be fooled: Square spends every query on every image and FAB-T
runs all targets on all images, the cost on a perfectly robust model. "eps 8/255" is the cost when the attack
succeeds (Square stops querying fooled images). Each figure is a second call of the compiled attack (the first
traces); the load average is printed with them, since the machine is shared.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from mocse_tf import attacks  # noqa: E402
from mocse_tf.data import cifar_local  # noqa: E402
from mocse_tf.models import build_network  # noqa: E402

flags.DEFINE_string("local_dir", "../shared/data/cifar10-mini", "CIFAR-10 python batches (test_batch is used).")
flags.DEFINE_integer("images", 100, "Test images attacked (one batch).")
flags.DEFINE_integer("queries", 1000, "Square queries.")
flags.DEFINE_integer("fab_steps", 100, "FAB steps per target.")
flags.DEFINE_integer("targets", 9, "FAB-T targets (ranks 1 .. targets of the clean logits).")
flags.DEFINE_enum("arch", "small", ["small", "preact_resnet18"], "small: 3 convolutions (16, 32, 64) + dense.")
flags.DEFINE_integer("width", 16, "PreAct-ResNet-18 width (with --arch=preact_resnet18).")
FLAGS = flags.FLAGS


def small_conv_net():
    keras.utils.set_random_seed(0)
    pixels = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1.0 / 255.0)(pixels)
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(pixels, keras.layers.Dense(10)(x))


def timed(function, *args):
    function(*args)  # traces
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main(argv):
    del argv
    images, _, _ = cifar_local.load(FLAGS.local_dir, "test")
    x = tf.constant(images[: FLAGS.images], tf.float32) / 255.0
    network = small_conv_net() if FLAGS.arch == "small" else build_network("preact_resnet18", width=FLAGS.width)
    forward = attacks.model_forward(network)
    logits = forward(x)["logits"]
    labels = tf.argmax(logits, axis=1)
    count = int(x.shape[0])
    print(f"{FLAGS.arch} net, {count} images, load average {os.getloadavg()[0]:.1f}")

    for eps, name in ((0.0, "worst case"), (8 / 255, "eps 8/255")):
        square = tf.function(lambda x, y, eps=eps: attacks.square_attack(
            forward, x, y, eps=eps, queries=FLAGS.queries, rescale_schedule=False), autograph=False)
        seconds, adv = timed(square, x, labels)
        robust = np.mean(np.argmax(forward(adv)["logits"], axis=1) == labels.numpy())
        print(f"Square L-inf {FLAGS.queries} queries, {name}: {seconds:.1f} s, {count / seconds:.1f} images/s, "
              f"robust accuracy {robust:.2f}")

    targets = [attacks.ranked_targets(logits, rank) for rank in range(1, FLAGS.targets + 1)]
    for eps, name in ((0.0, "worst case"), (8 / 255, "eps 8/255")):
        fab = tf.function(lambda x, y, t, eps=eps: attacks.fab_attack(
            forward, x, y, eps=eps, steps=FLAGS.fab_steps, targets=t), autograph=False)
        fab(x, labels, targets[0])  # traces
        started = time.perf_counter()
        remaining, robust = np.arange(count), np.ones(count, bool)
        for target in targets:  # each target only on the images no earlier target fooled, as AutoAttack does
            if remaining.size == 0:
                break
            adv = fab(tf.gather(x, remaining), tf.gather(labels, remaining), tf.gather(target, remaining))
            fooled = np.argmax(forward(adv)["logits"], axis=1) != labels.numpy()[remaining]
            robust[remaining[fooled]] = False
            remaining = remaining[~fooled]
        seconds = time.perf_counter() - started
        print(f"FAB-T L-inf {FLAGS.targets} targets x {FLAGS.fab_steps} steps, {name}: {seconds:.1f} s, "
              f"{count / seconds:.1f} images/s, robust accuracy {robust.mean():.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    app.run(main)
