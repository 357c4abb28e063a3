"""Adversarial train-step images/s (plain, fast FGSM, PGD-3/7/10, TRADES) for both architectures, and each one's
cost relative to the plain step measured back to back.

Usage: python bench/adversarial.py [--arch=preact_resnet18,mocse] [--width=0] [--batch=128] [--steps=3]
       [--rounds=2] [--modes=plain,fgsm_rs,pgd3,pgd7,pgd10,trades] [--forms=loop,unrolled] [--bn=inference]
Every mode runs the real `RobustTrainer.train_step` (make_training_attack from a TrainConfig). The modes are
timed in rounds, plain first in each round, and a mode's cost is the median over rounds of its time per step
divided by the plain step's in the same round: the machine is shared, so only such back-to-back ratios are
comparable. The load average is printed with the figures. --forms: attack steps in a tf.while_loop ("loop")
and/or as a Python loop ("unrolled"); --bn: batch normalisation during generation ("inference" and/or "batch").
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from mocse_tf.models import build_network  # noqa: E402
from mocse_tf.training.adversarial import make_training_attack  # noqa: E402
from mocse_tf.training.config import TrainConfig  # noqa: E402
from mocse_tf.training.trainer import RobustTrainer  # noqa: E402

flags.DEFINE_list("arch", ["preact_resnet18", "mocse"], "Architectures to measure.")
flags.DEFINE_integer("width", 0, "Width (0 = each architecture's default: 64, or 16 per expert).")
flags.DEFINE_integer("batch", 128, "Training batch size.")
flags.DEFINE_integer("steps", 3, "Timed steps per mode and round (after 2 warm-up steps, the first traces).")
flags.DEFINE_integer("rounds", 2, "Rounds of timing; ratios are medians over rounds.")
flags.DEFINE_list("modes", ["plain", "fgsm_rs", "pgd3", "pgd7", "pgd10", "trades"],
                  "plain, fgsm_rs, pgd<k> (k PGD steps of 2/255 at eps 8/255) or trades (10 steps).")
flags.DEFINE_list("forms", ["loop"], "Attack loop forms to measure: loop (tf.while_loop) and/or unrolled.")
flags.DEFINE_list("bn", ["inference"], "BN during generation: inference (moving averages) and/or batch.")
FLAGS = flags.FLAGS


def config_of(mode):
    """The TrainConfig of a bench mode name."""
    if mode == "plain":
        return TrainConfig(adv="none")
    if mode in ("fgsm_rs", "trades"):
        return TrainConfig(adv=mode)
    if mode.startswith("pgd") and mode[3:].isdigit():
        return TrainConfig(adv="pgd", adv_steps=int(mode[3:]))
    raise app.UsageError(f"unknown mode {mode!r}; use plain, fgsm_rs, pgd<k> or trades")


def step_function(network, mode, form, bn, images, labels):
    """A callable running one real train step of `mode`; returns the seconds its first (tracing) call took."""
    attack = make_training_attack(config_of(mode), batch_statistics=bn == "batch", unroll=form == "unrolled")
    trainer = RobustTrainer(network, attack=attack)
    trainer.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=5e-4))
    iterator = iter(tf.data.Dataset.from_tensors((images, labels)).repeat())
    trainer.make_train_function()  # sets trainer.train_function (returns it only when it already exists)
    step = lambda: trainer.train_function(iterator)["loss"].numpy()  # noqa: E731
    started = time.perf_counter()
    step()
    return step, time.perf_counter() - started


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    for form in FLAGS.forms:
        if form not in ("loop", "unrolled"):
            raise app.UsageError(f"unknown form {form!r}; use loop and/or unrolled")
    for bn in FLAGS.bn:
        if bn not in ("inference", "batch"):
            raise app.UsageError(f"unknown bn {bn!r}; use inference and/or batch")
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (FLAGS.batch, 32, 32, 3), dtype=np.uint8))
    labels = tf.constant(rng.integers(0, 10, FLAGS.batch), tf.int64)
    print(f"batch {FLAGS.batch}, {FLAGS.steps} timed steps x {FLAGS.rounds} rounds per mode; "
          f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'arch':16s} {'width':>5s} {'mode':8s} {'form':8s} {'bn':9s} {'trace s':>8s} {'img/s':>7s} "
          f"{'x plain':>8s}")
    for arch in FLAGS.arch:
        width = FLAGS.width or None
        network = build_network(arch, width=width)
        shown_width = width or (64 if arch == "preact_resnet18" else 16)
        runs = []  # (mode, form, bn, step, trace seconds)
        for mode in FLAGS.modes:
            variants = [("-", "-")] if mode == "plain" else [(f, b) for f in FLAGS.forms for b in FLAGS.bn]
            for form, bn in variants:
                step, trace_seconds = step_function(network, mode, form, bn, images, labels)
                step()  # second warm-up step: the first one also built the optimizer state
                runs.append((mode, form, bn, step, trace_seconds))
        seconds = {index: [] for index in range(len(runs))}
        for _ in range(FLAGS.rounds):
            for index, (_, _, _, step, _) in enumerate(runs):
                started = time.perf_counter()
                for _ in range(FLAGS.steps):
                    step()
                seconds[index].append((time.perf_counter() - started) / FLAGS.steps)
        plain = [index for index, run in enumerate(runs) if run[0] == "plain"]
        for index, (mode, form, bn, _, trace_seconds) in enumerate(runs):
            rate = FLAGS.batch / statistics.median(seconds[index])
            ratio = (statistics.median(s / p for s, p in zip(seconds[index], seconds[plain[0]]))
                     if plain else float("nan"))
            print(f"{arch:16s} {shown_width:5d} {mode:8s} {form:8s} {bn:9s} {trace_seconds:8.1f} {rate:7.1f} "
                  f"{ratio:8.2f}", flush=True)
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    app.run(main)
