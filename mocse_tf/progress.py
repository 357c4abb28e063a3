"""Progress reports a person reads: a live line on a terminal, plain timed lines in a log file.

On a terminal the line is redrawn in place (carriage return, no colours). When the output is a file or a pipe
every report is a plain line: at most one a minute while working and one at the end, so a redirected run is
never silent for long and its log holds no control characters. The remaining time is estimated from the work
after the first update, whose time includes tracing and compiling. `StageProgress` reports a plan of long stages
(bin/table1's) with the time left priced from the rates measured so far.
"""

import sys
import time

import keras

from mocse_tf.files import read_json, write_json


def format_seconds(seconds):
    """12s, 3m05s, 2h03m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts `total` units of work (images, steps) done so far and reports them.

    `update(done)` sets the count; `finish()` writes the last line. `interval`: seconds between the plain lines
    written to a file or a pipe (a terminal is redrawn at most every `live_interval` seconds).
    """

    def __init__(self, total, unit="image", label="", stream=None, interval=60.0, live=None, live_interval=0.2,
                 clock=time.monotonic):
        self.total = int(total)
        self.unit = unit
        self.label = label
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.interval = live_interval if self.live else interval
        self.clock = clock
        self.started = clock()
        self.done = 0
        self._first = None  # (time, count) of the first update: the rate is measured from there
        self._last_report = self.started
        self._finished = False
        self._width = 0

    def _units(self, count):
        return f"{self.unit}s" if count != 1 else self.unit

    def line(self):
        now = self.clock()
        text = f"{self.label}{self.done}/{self.total} {self._units(self.total)}, {format_seconds(now - self.started)} elapsed"
        if self.done >= self.total:
            return text
        if self._first is not None and self.done > self._first[1] and now > self._first[0]:
            rate = (self.done - self._first[1]) / (now - self._first[0])
            text += f", about {format_seconds((self.total - self.done) / rate)} remaining"
        return text

    def _write(self, text, final=False):
        if self.live:
            padding = " " * max(0, self._width - len(text))  # covers the end of a longer previous line
            self.stream.write("\r" + text + padding + ("\n" if final else ""))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, done):
        self.done = int(done)
        now = self.clock()
        if self._first is None:
            self._first = (now, self.done)
        if self.done >= self.total:
            self.finish()
        elif now - self._last_report >= self.interval:
            self._last_report = now
            self._write(self.line())

    def add(self, count):
        self.update(self.done + count)

    def finish(self, suffix=""):
        if not self._finished:
            self._finished = True
            self._write(self.line() + suffix, final=True)


class StageProgress:
    """One line per step of a plan of stages (bin/table1's trainings and evaluations) with the time spent and an
    estimate of what is left.

    `stages`: {(job, stage): {"units": its cost, "kind": what makes two rates alike (the network), "done": 0..1}}.
    Every unfinished stage is priced at the seconds per unit measured so far for the same stage and kind (or the
    same kind, or any stage, before that is known). Measurements are kept in `rates_path` (when given), so a
    resumed plan estimates from its first line on."""

    def __init__(self, stages, log, rates_path=None, label="table"):
        self.stages = stages
        self.log = log
        self.label = label
        self.started = time.time()
        self.rates_path = rates_path
        stored = read_json(rates_path, default={}) if rates_path else {}
        self.measured = {tuple(key.split("/")): value for key, value in stored.items()}  # (stage, kind) -> [s, units]

    def rate(self, stage, kind):
        for keys in ([(stage, kind)], [k for k in self.measured if k[1] == kind], list(self.measured)):
            seconds = sum(self.measured[k][0] for k in keys if k in self.measured)
            units = sum(self.measured[k][1] for k in keys if k in self.measured)
            if units:
                return seconds / units
        return None

    def left(self):
        total = 0.0
        for (_, stage), info in self.stages.items():
            remaining = info["units"] * (1.0 - info["done"])
            if remaining <= 0:
                continue
            rate = self.rate(stage, info["kind"])
            if rate is None:
                return None
            total += remaining * rate
        return total

    def record(self, job, stage, fraction_done, seconds_now, units_now):
        """Marks `fraction_done` of a stage finished after `units_now` units took `seconds_now` seconds."""
        info = self.stages[(job, stage)]
        info["done"] = fraction_done
        if units_now > 0:
            bucket = self.measured.setdefault((stage, info["kind"]), [0.0, 0.0])
            bucket[0] += seconds_now
            bucket[1] += units_now
            if self.rates_path:
                write_json(self.rates_path, {"/".join(key): value for key, value in self.measured.items()})

    def line(self, prefix, text):
        left = self.left()
        estimate = "estimate after the first measured stage" if left is None else f"~{format_seconds(left)} left"
        self.log(f"{prefix}: {text} | {self.label} {format_seconds(time.time() - self.started)} elapsed, {estimate}")


class EpochProgress(keras.callbacks.Callback):
    """Training progress under the tool's own epoch count: one line per epoch (`epoch 2/3: ...` with its metrics),
    redrawn step by step on a terminal when `live`; `fit` runs with verbose=0 so Keras adds nothing of its own."""

    def __init__(self, epochs, steps_per_epoch, live, stream=None):
        super().__init__()
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.live = live
        self.stream = stream or sys.stdout
        self.progress = None

    def on_epoch_begin(self, epoch, logs=None):
        self.progress = Progress(self.steps_per_epoch, unit="step", label=f"epoch {epoch + 1}/{self.epochs}: ",
                                 stream=self.stream, live=self.live, interval=float("inf"))

    def on_train_batch_end(self, batch, logs=None):
        if self.live:
            self.progress.update(min(batch + 1, self.steps_per_epoch - 1))  # the last step is drawn at epoch end

    def on_epoch_end(self, epoch, logs=None):
        self.progress.done = self.steps_per_epoch
        metrics = "".join(f", {name} {float(value):.4f}" for name, value in sorted((logs or {}).items())
                          if name != "learning_rate")
        self.progress.finish(metrics)
