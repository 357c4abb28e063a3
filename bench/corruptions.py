"""Images/s of every CIFAR-10-C corruption (batched, in a tf.function, after warm-up) and the projected time
for all corruptions x 5 severities on 10,000 images.

Usage: python bench/corruptions.py [--corruptions=all] [--batch=500] [--repeats=3] [--images=10000]
Each severity is traced once and warmed up, then timed `--repeats` times on one batch; the best repeat counts
(this machine is shared, so the minimum is the least disturbed figure). The images are real CIFAR-10 test
images when ../shared/data/cifar10-mini is present, else smooth random images.
"""

import os
import pathlib
import pickle
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from mocse_tf import corruptions  # noqa: E402

flags.DEFINE_list("corruptions", ["all"], "Corruption names, or 'all' (the 19 in the official order).")
flags.DEFINE_integer("batch", 500, "Images per call.")
flags.DEFINE_integer("repeats", 3, "Timed calls per severity (the fastest counts).")
flags.DEFINE_integer("images", 10000, "Test-set size for the projected total (CIFAR-10: 10,000).")
FLAGS = flags.FLAGS

CIFAR10_MINI_TEST = (
    pathlib.Path(__file__).resolve().parents[1].parent / "shared/data/cifar10-mini/cifar-10-batches-py/test_batch"
)


def sample_images(count):
    """Real CIFAR-10 test images (repeated up to `count`) if present, else smooth random images."""
    if CIFAR10_MINI_TEST.is_file():
        with open(CIFAR10_MINI_TEST, "rb") as handle:
            data = pickle.load(handle, encoding="bytes")[b"data"]
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    else:
        rng = np.random.default_rng(0)
        coarse = rng.uniform(0, 255, size=(count, 4, 4, 3))
        images = tf.image.resize(coarse, [32, 32], method="bicubic").numpy().clip(0, 255).astype(np.uint8)
    return np.resize(images, (count, 32, 32, 3)).astype(np.uint8)


def seconds_per_batch(function, images, severity, repeats):
    """Best wall time of one batched call of a traced corruption at one severity."""
    traced = tf.function(lambda x, seed: function(x, severity, seed), autograph=False)
    seed = tf.constant([1, 2], tf.int64)
    traced(images, seed).numpy()  # trace + warm-up
    traced(images, seed).numpy()
    best = float("inf")
    for repeat in range(repeats):
        started = time.perf_counter()
        traced(images, seed + repeat).numpy()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv):
    del argv
    names = corruptions.ALL if FLAGS.corruptions == ["all"] else [corruptions.canonical_name(n) for n in FLAGS.corruptions]
    images = tf.constant(sample_images(FLAGS.batch))
    print(f"batch {FLAGS.batch}, best of {FLAGS.repeats}; projected = 5 severities x {FLAGS.images} images")
    print(f"{'corruption':<20} {'img/s s1..s5':<44} {'projected s':>11}")
    total = 0.0
    for name in names:
        function = corruptions.get_corruption(name)
        rates = [FLAGS.batch / seconds_per_batch(function, images, s, FLAGS.repeats) for s in corruptions.SEVERITIES]
        projected = sum(FLAGS.images / rate for rate in rates)
        total += projected
        print(f"{name:<20} {' '.join(f'{r:8.0f}' for r in rates):<44} {projected:11.1f}", flush=True)
    print(f"{'total':<20} {'':<44} {total:11.1f}")


if __name__ == "__main__":
    app.run(main)
