"""Progress reports: plain timed lines in a log file, a redrawn line on a terminal, ETA without the first step."""

import io

import pytest

from mocse_tf.progress import Progress, StageProgress, format_seconds


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_log_file_gets_a_plain_line_a_minute_with_done_elapsed_and_remaining():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(1000, unit="image", stream=stream, live=False, interval=60, clock=clock)
    clock.now = 50.0  # the first batch: tracing took 50 s, so it must not set the rate
    progress.update(100)
    clock.now = 70.0  # 100 images in the 20 s after it: 5 images/s, 800 left -> 160 s
    progress.update(200)
    clock.now = 100.0
    progress.update(300)  # under a minute since the last line: nothing new
    clock.now = 200.0
    progress.update(1000)
    lines = stream.getvalue().splitlines()
    assert lines == ["200/1000 images, 1m10s elapsed, about 2m40s remaining", "1000/1000 images, 3m20s elapsed"]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_terminal_line_is_redrawn_in_place_and_ends_with_a_newline():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(4, unit="step", label="epoch 1/2: ", stream=stream, live=True, live_interval=0, clock=clock)
    for step in (1, 2, 3):
        clock.now += 1
        progress.update(step)
    progress.done = 4
    progress.finish(", loss 0.5000")
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.split("\r")[-1].rstrip() == "epoch 1/2: 4/4 steps, 3s elapsed, loss 0.5000"  # padded over the last
    assert text.startswith("\repoch 1/2: 1/4 steps, 1s elapsed\r")  # one step: no remaining time yet
    assert "about 1s remaining" in text


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59.4, 61, 3599, 7380)] == ["0s", "59s", "1m01s", "59m59s", "2h03m"]


def test_stage_progress_prices_what_is_left_from_the_rates_measured_and_keeps_them(tmp_path):
    lines, rates = [], tmp_path / "rates.json"
    stages = {("a", "train"): {"units": 100, "kind": "net1", "done": 0.0},
              ("a", "eval"): {"units": 50, "kind": "net1", "done": 0.0},
              ("b", "train"): {"units": 100, "kind": "net2", "done": 0.0}}
    progress = StageProgress(stages, lines.append, rates_path=str(rates))
    progress.line("[1/2] a", "training starts")
    assert lines[-1].startswith("[1/2] a: training starts | table 0s elapsed, estimate after the first measured")
    progress.record("a", "train", 0.5, 10.0, 50)  # 0.2 s per unit of (train, net1)
    # Left: half of a's training at its own rate, a's evaluation at net1's rate, b's training at any stage's rate.
    assert progress.left() == pytest.approx(50 * 0.2 + 50 * 0.2 + 100 * 0.2)
    progress.line("[1/2] a", "train epoch 1/2")
    assert lines[-1].endswith("~40s left")
    resumed = StageProgress(stages, lines.append, rates_path=str(rates))  # a rerun reads the rates back
    assert resumed.rate("train", "net1") == pytest.approx(0.2) and resumed.left() == pytest.approx(40.0)
