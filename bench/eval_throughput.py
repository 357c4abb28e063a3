"""Evaluation throughput of bin/eval_c's pipeline against the model's raw inference throughput.

Usage: python bench/eval_throughput.py [--arch=preact_resnet18] [--width=0] [--batch=500] [--num_examples=2000]
       [--format=saved_model|keras] [--extra=generate,tfds_mock] [--corruption=gaussian_noise] [--repeats=2]
Raw: the loaded model (the same mocse_tf.loading.Classifier and counting function bin/eval_c uses) on batches already in
memory as tensors.
Folder: count_correct over FolderSource batches read from memory-mapped .npy files in the released CIFAR-10-C
layout (the path of --source=folder and of tfds-free offline use). Target: folder / raw >= 0.9.
Extra lines: on-the-fly generation (the corruption computed in tf.data.map while the model runs: on a CPU both share
the cores, so this measures the sum of the two costs) and tfds mock data (tfds' Python-side random generator: a
check that the tfds code path adds no stall, not a figure for real tfds records).
Raw and folder batches alternate one by one and their median step times are compared, because this machine is
shared and its speed drifts; a whole folder pass also reports the share of time spent waiting for input.
"""

import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from mocse_tf.evaluation import accuracy, sources  # noqa: E402
from mocse_tf.export import export_saved_model  # noqa: E402
from mocse_tf.loading import load_model  # noqa: E402
from mocse_tf.models import build_network  # noqa: E402

flags.DEFINE_string("arch", "preact_resnet18", "preact_resnet18 or mocse.")
flags.DEFINE_integer("width", 0, "Width (0 = the architecture's default: 64, or 16 per expert).")
flags.DEFINE_integer("batch", 500, "Evaluation batch size.")
flags.DEFINE_integer("num_examples", 2000, "Images per timed pass.")
flags.DEFINE_enum("format", "saved_model", ["saved_model", "keras"], "How the model is loaded.")
flags.DEFINE_list("extra", ["generate", "tfds_mock"], "Extra lines: generate, tfds_mock (or empty).")
flags.DEFINE_string("corruption", "gaussian_noise", "Corruption of the generate line.")
flags.DEFINE_integer("repeats", 2, "Passes over --num_examples for the alternating raw / folder batches.")
FLAGS = flags.FLAGS


def time_pipeline(counter, dataset):
    """Images/s of count_correct over `dataset`, and the share of that time spent waiting for input."""
    waited, total, started = 0.0, 0, time.perf_counter()
    iterator = iter(dataset)
    while True:
        before = time.perf_counter()
        try:
            images, labels = next(iterator)
        except StopIteration:
            break
        waited += time.perf_counter() - before
        counter(images, labels).numpy()
        total += int(labels.shape[0])
    elapsed = time.perf_counter() - started
    return total / elapsed, waited / elapsed


def time_raw_pass(counter, memory_batches):
    started = time.perf_counter()
    for images, labels in memory_batches:
        counter(images, labels).numpy()
    return sum(int(labels.shape[0]) for _, labels in memory_batches) / (time.perf_counter() - started)


def compare_pass(counter, memory_batches, dataset):
    """(images/s of a whole pass over `dataset`, its input-wait share, raw images/s of passes just before and
    after it): a whole-pass comparison for the extra lines, bracketed so that load drift cancels."""
    before = time_raw_pass(counter, memory_batches)
    rate, wait_share = time_pipeline(counter, dataset)
    after = time_raw_pass(counter, memory_batches)
    return rate, wait_share, (before + after) / 2


def paired_step_times(counter, memory_batches, dataset, repeats):
    """Per-batch seconds, alternating one in-memory batch and one pipeline batch (the same counter on both), so
    that the load of a shared machine hits both sides alike."""
    raw, pipeline = [], []

    def run_raw(images, labels, _):
        started = time.perf_counter()
        counter(images, labels).numpy()
        raw.append(time.perf_counter() - started)

    def run_pipeline(_, __, iterator):
        started = time.perf_counter()
        counter(*next(iterator)).numpy()
        pipeline.append(time.perf_counter() - started)

    step = 0
    for _ in range(repeats):
        iterator = iter(dataset)
        for images, labels in memory_batches:
            # Which side goes first alternates (ABBA), so neither profits from the order.
            for run in ((run_raw, run_pipeline) if step % 2 == 0 else (run_pipeline, run_raw)):
                run(images, labels, iterator)
            step += 1
    return np.asarray(raw), np.asarray(pipeline)


def main(_):
    workdir = tempfile.mkdtemp(prefix="eval_throughput-")
    try:
        network = build_network(FLAGS.arch, width=FLAGS.width or None)
        if FLAGS.format == "keras":
            path = os.path.join(workdir, "model.keras")
            network.save(path)
        else:
            path = export_saved_model(network, os.path.join(workdir, "model"))
        classifier = load_model(path)
        counter = accuracy.correct_counter(classifier)

        count, batch = FLAGS.num_examples, FLAGS.batch
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, count)
        # A released-layout folder: one corruption file (5 severities x count images) and labels.npy.
        c_dir = os.path.join(workdir, "CIFAR-10-C")
        os.makedirs(c_dir)
        np.save(os.path.join(c_dir, "gaussian_noise.npy"), np.concatenate([images] * 5))
        np.save(os.path.join(c_dir, "labels.npy"), np.tile(labels.astype(np.uint8), 5))
        folder = sources.FolderSource(c_dir, ["gaussian_noise"])

        memory_batches = [(tf.constant(images[i : i + batch]), tf.constant(labels[i : i + batch], tf.int64))
                           for i in range(0, count, batch)]
        counter(*memory_batches[0])  # trace and warm up
        time_pipeline(counter, folder.dataset("gaussian_noise", 1, batch).take(1))
        raw_steps, folder_steps = paired_step_times(counter, memory_batches, folder.dataset("gaussian_noise", 2, batch),
                                                    FLAGS.repeats)
        raw_rate, folder_rate = batch / np.median(raw_steps), batch / np.median(folder_steps)
        pass_rate, wait_share, raw_pass = compare_pass(counter, memory_batches,
                                                       folder.dataset("gaussian_noise", 3, batch))
        width = FLAGS.width or (64 if FLAGS.arch == "preact_resnet18" else 16)
        print(f"{FLAGS.arch} width {width}, {FLAGS.format}, batch {batch}; {len(raw_steps)} alternating batches "
              f"per side, medians (images/s)")
        print(f"  raw inference (in-memory tensors)     {raw_rate:9.1f}")
        print(f"  evaluation from a CIFAR-10-C folder   {folder_rate:9.1f}")
        print(f"  ratio folder / raw                    {folder_rate / raw_rate:9.3f}   (target >= 0.9)")
        print(f"  one whole folder pass: {pass_rate:.1f} images/s against {raw_pass:.1f} raw (ratio "
              f"{pass_rate / raw_pass:.3f}; {100 * wait_share:.2f}% of the time waiting for input)")

        if "generate" in FLAGS.extra:
            generated = sources.GeneratedSource(images, labels, seed=0)
            time_pipeline(counter, generated.dataset(FLAGS.corruption, 3, batch).take(1))
            rate, wait_share, raw_pass = compare_pass(counter, memory_batches,
                                                      generated.dataset(FLAGS.corruption, 3, batch))
            print(f"  {FLAGS.corruption} generated on the fly: {rate:.1f} images/s against {raw_pass:.1f} raw "
                  f"(ratio {rate / raw_pass:.3f}; {100 * wait_share:.1f}% of the time waiting for input)")
        if "tfds_mock" in FLAGS.extra:
            import tensorflow_datasets as tfds

            manual = os.path.join(workdir, "tfds", "downloads", "manual")
            os.makedirs(manual)
            open(os.path.join(manual, sources.TFDS_ARCHIVE), "wb").close()  # skips the network probe
            with tfds.testing.mock_data(num_examples=count):
                tfds_source = sources.TfdsSource(os.path.join(workdir, "tfds"), num_examples=count)
                time_pipeline(counter, tfds_source.dataset("gaussian_noise", 1, batch).take(1))
                rate, wait_share, raw_pass = compare_pass(counter, memory_batches,
                                                          tfds_source.dataset("gaussian_noise", 1, batch))
            print(f"  tfds mock data: {rate:.1f} images/s against {raw_pass:.1f} raw (ratio {rate / raw_pass:.3f}; "
                  f"{100 * wait_share:.1f}% of the time waiting for input)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    app.run(main)
