"""Interrupted runs resume instead of restarting; bad losses and unwritable folders stop cleanly."""

import json
import signal
import subprocess
import time

import keras
import numpy as np
import pytest

from mocse_tf.errors import UsageError
from mocse_tf.training.config import TrainConfig
from mocse_tf.training.run import train
from tests.cli_helpers import run_tool, tool_command, tool_env

TINY_RUN = ("--arch=preact_resnet18", "--width=4", "--dataset=synthetic", "--num_train_examples=600",
            "--num_test_examples=200", "--batch_size=50", "--epochs=3", "--learning_rate=0.05", "--seed=3",
            "--noexport", "--verbose=2")


def _history(run_dir):
    path = run_dir / "history.json"
    try:
        return json.loads(path.read_text()) if path.exists() else []
    except json.JSONDecodeError:  # never expected: history is written by atomic rename
        raise AssertionError(f"{path} was half-written")


def test_sigkill_mid_run_then_same_command_resumes_and_matches_uninterrupted_run(tmp_path):
    reference = run_tool("train", *TINY_RUN, f"--output_dir={tmp_path / 'ref'}")
    assert reference.returncode == 0, reference.stderr[-3000:]

    args = (*TINY_RUN, f"--output_dir={tmp_path / 'run'}")
    process = subprocess.Popen(tool_command("train", *args), env=tool_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not _history(tmp_path / "run") and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before_kill = len(_history(tmp_path / "run"))
    assert 1 <= done_before_kill < 3, "the kill must land after epoch 1 and before the end"
    assert not (tmp_path / "run" / "results.json").exists()

    resumed = run_tool("train", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at epoch {done_before_kill + 1}/3" in resumed.stdout
    assert "epoch 1/3" not in resumed.stdout.replace(f"epoch {done_before_kill + 1}/3", "")

    history = _history(tmp_path / "run")
    reference_history = _history(tmp_path / "ref")
    assert [e["epoch"] for e in history] == [1, 2, 3]
    # Same seed, per-epoch data seeds and restored optimizer state: the same trajectory. CPU kernels are
    # deterministic here, but allow a little float noise from threaded reductions.
    for ours, theirs in zip(history, reference_history):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-3, abs=1e-4)
        assert ours["val_accuracy"] == pytest.approx(theirs["val_accuracy"], abs=0.011)
    final = json.loads((tmp_path / "run" / "results.json").read_text())["test"]
    final_reference = json.loads((tmp_path / "ref" / "results.json").read_text())["test"]
    assert final["accuracy"] == pytest.approx(final_reference["accuracy"], abs=0.011)
    assert final["loss"] == pytest.approx(final_reference["loss"], rel=1e-3)


def _tiny_config(tmp_path, **overrides):
    values = dict(arch="preact_resnet18", width=2, dataset="synthetic", num_train_examples=100,
                  num_test_examples=50, batch_size=50, epochs=2, output_dir=str(tmp_path / "run"),
                  export_dir=str(tmp_path / "exports"), run_name="tiny", verbose=0)
    values.update(overrides)
    return TrainConfig(**values)


class PoisonWeightsAtEpoch(keras.callbacks.Callback):
    """Makes the loss NaN from the given epoch on, as a diverging run would."""

    def __init__(self, epoch):
        super().__init__()
        self.poison_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.poison_epoch:
            kernel = self.model.network.get_layer("logits").kernel
            kernel.assign(np.full(kernel.shape, np.nan, np.float32))


def test_nan_loss_stops_with_clear_message_and_keeps_last_good_checkpoint(tmp_path):
    config = _tiny_config(tmp_path, epochs=3)
    with pytest.raises(UsageError, match=r"training stopped: loss became nan .* in epoch 2; the last good "
                                         r"checkpoint \(epoch 1\) is kept"):
        train(config, callbacks=[PoisonWeightsAtEpoch(1)])
    run_dir = tmp_path / "run"
    assert [e["epoch"] for e in _history(run_dir)] == [1]
    checkpoint_state = (run_dir / "checkpoints" / "checkpoint").read_text()
    assert 'model_checkpoint_path: "ckpt-1"' in checkpoint_state
    assert not (run_dir / "results.json").exists()
    assert not (tmp_path / "exports").exists()  # no export of diverged weights
    # The kept checkpoint is good: resuming finishes the run with finite numbers.
    results = train(config)
    assert np.isfinite(results["test"]["loss"])


def test_unwritable_output_and_export_folders_fail_cleanly(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(UsageError, match="cannot create `output_dir` .*a_file/run"):
        train(_tiny_config(tmp_path, output_dir=str(blocker / "run")))
    with pytest.raises(UsageError, match="cannot write .*a_file"):
        train(_tiny_config(tmp_path, epochs=1, export_dir=str(blocker / "exports")))
    # Refused before any training, so no time is spent on a run whose export could not be written.
    assert not (tmp_path / "run").exists()
    results = train(_tiny_config(tmp_path, epochs=1))
    assert (tmp_path / "exports" / "tiny" / "1" / "saved_model.pb").exists()
    assert results["epochs_trained"] == 1
