"""Images/s of every CIFAR-10-C corruption (batched, in a tf.function, after warm-up) and the projected time
for all corruptions x 5 severities on 10,000 images.

Usage: python bench/corruptions.py [--corruptions=all] [--batch=500] [--repeats=3] [--images=10000]
Each severity is traced once and warmed up, then timed `--repeats` times on one batch; the best repeat counts
(this machine is shared, so the minimum is the least disturbed figure). Besides wall time the script reports
the process CPU time, which other people's load disturbs less: on an idle 2-core machine the wall time lies
between CPU time / 2 (perfect use of both cores) and CPU time. The images are real CIFAR-10 test images when
../shared/data/cifar10-mini is present, else smooth random images.
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
    """Best (wall, CPU) seconds of one batched call of a traced corruption at one severity."""
    traced = tf.function(lambda x, seed: function(x, severity, seed), autograph=False)
    seed = tf.constant([1, 2], tf.int64)
    traced(images, seed).numpy()  # trace + warm-up
    traced(images, seed).numpy()
    best_wall = best_cpu = float("inf")
    for repeat in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        traced(images, seed + repeat).numpy()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def main(argv):
    del argv
    names = corruptions.ALL
    if FLAGS.corruptions != ["all"]:
        names = [corruptions.canonical_name(name) for name in FLAGS.corruptions]
    images = tf.constant(sample_images(FLAGS.batch))
    print(f"batch {FLAGS.batch}, best of {FLAGS.repeats}; projected = 5 severities x {FLAGS.images} images")
    print(f"{'corruption':<20} {'wall img/s, severity 1..5':<44} {'wall s':>7} {'CPU s':>7}")
    total_wall = total_cpu = 0.0
    for name in names:
        function = corruptions.get_corruption(name)
        timings = [seconds_per_batch(function, images, s, FLAGS.repeats) for s in corruptions.SEVERITIES]
        scale = FLAGS.images / FLAGS.batch
        wall, cpu = sum(t[0] for t in timings) * scale, sum(t[1] for t in timings) * scale
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        rates = " ".join(f"{FLAGS.batch / t[0]:8.0f}" for t in timings)
        print(f"{name:<20} {rates:<44} {wall:7.1f} {cpu:7.1f}", flush=True)
    print(f"{'total':<20} {'':<44} {total_wall:7.1f} {total_cpu:7.1f}")


if __name__ == "__main__":
    app.run(main)
