"""Each bad training input gets one clear error naming the problem and the fix, and nothing is overwritten."""

import json

import pytest

from mocse_tf.errors import UsageError
from mocse_tf.training.config import TrainConfig
from mocse_tf.training.run import train
from tests.cli_helpers import assert_clean_error, outcome, run_tool


def _config(tmp_path, **overrides):
    values = dict(arch="preact_resnet18", width=2, dataset="synthetic", num_train_examples=100,
                  num_test_examples=50, batch_size=50, epochs=1, output_dir=str(tmp_path / "run"),
                  export_dir=str(tmp_path / "exports"), run_name="tiny", verbose=0, export=False)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.parametrize("overrides, message", [
    (dict(arch="resnet50"), "unknown arch 'resnet50'; choose one of preact_resnet18, mocse"),
    (dict(dataset="imagenet"), "unknown dataset 'imagenet'; choose one of synthetic, cifar10"),
    (dict(augment="autoaugment"), "unknown augmentation policy 'autoaugment'; choose one of none, standard, augmented"),
    (dict(aggregate="mean"), "unknown aggregate 'mean'"),
    (dict(lr_schedule="linear"), "unknown lr_schedule 'linear'; choose one of cosine, multistep, onecycle"),
    (dict(precision="fp16"), "unknown precision 'fp16'; choose one of float32, mixed_float16, mixed_bfloat16"),
    (dict(adv="madry"), "unknown adv 'madry'; choose one of none, pgd, trades, fgsm_rs"),
    (dict(strategy="gpu"), "unknown strategy 'gpu'; choose one of default, mirrored, multi_worker, tpu"),
    (dict(weight_decay_mode="l2"), "unknown weight_decay_mode 'l2'; choose one of coupled, decoupled"),
])
def test_unknown_names_are_refused_before_anything_is_written(tmp_path, overrides, message):
    # The check of each name is its module's own (the one its builder makes), run by TrainConfig.validate first.
    with pytest.raises(UsageError, match=message):
        train(_config(tmp_path, **overrides))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("overrides, message", [
    (dict(epochs=0), "`epochs` must be a positive integer, got 0"),
    (dict(batch_size=-8), "`batch_size` must be a positive integer, got -8"),
    (dict(width=0), "`width` must be a positive integer, got 0"),
    (dict(dataset="cifar10_local"), "`dataset`=cifar10_local needs `local_dir`=PATH"),
    (dict(batch_size=500), "`batch_size`=500 is larger than the training set (100 images)"),
])
def test_bad_values_are_refused_before_any_training(tmp_path, overrides, message):
    with pytest.raises(UsageError) as caught:
        train(_config(tmp_path, **overrides))
    assert message in str(caught.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_local_data_folder_names_the_path(tmp_path):
    with pytest.raises(UsageError, match=str(tmp_path / "nowhere")):
        train(_config(tmp_path, dataset="cifar10_local", local_dir=str(tmp_path / "nowhere")))


def test_folder_holding_a_different_run_is_refused_and_left_untouched(tmp_path):
    train(_config(tmp_path))
    run_dir = tmp_path / "run"
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(UsageError, match=r"holds a different run \(learning_rate=0.1 there vs 0.02 now\); use a "
                                         r"new `output_dir` or `run_name`"):
        train(_config(tmp_path, learning_rate=0.02))
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    assert json.loads((run_dir / "run_config.json").read_text())["learning_rate"] == 0.1


def test_foreign_non_empty_folder_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="is not empty and holds no run_config.json"):
        train(_config(tmp_path))
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_cli_unknown_arch_is_one_line_exit_2(tmp_path):
    result = run_tool("train", "--arch=vgg", f"--output_dir={tmp_path}/run")
    assert_clean_error(result, "unknown arch 'vgg'", "preact_resnet18, mocse")


def test_cli_offline_cifar10_says_how_to_supply_the_data(tmp_path):
    result = run_tool("train", "--dataset=cifar10", f"--data_dir={tmp_path}/tfds", f"--output_dir={tmp_path}/run",
                      timeout=120)
    line = assert_clean_error(result, "cifar10", "--local_dir")
    assert "--data_dir" in line and "synthetic" in line
    assert not (tmp_path / "run").exists()


def test_cli_bad_flag_value_and_stray_argument(tmp_path):
    result = run_tool("train", "--epochs=many")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--epochs" in result.stderr
    assert_clean_error(run_tool("train", "oops"), "unexpected arguments ['oops']")
    # The library names settings as `epochs`; the tool shows them as its flags.
    assert outcome(run_tool("train", "--epochs=0"))[::2] == (2, "error: --epochs must be a positive integer, got 0\n")
    assert outcome(run_tool("tune", "--corruption_severities=1,x"))[::2] == (
        2, "error: --corruption_severities must be a comma-separated list of integers, got 1,x\n")


@pytest.mark.parametrize("overrides, message", [
    (dict(learning_rate=float("nan")), "`learning_rate` must be a finite number, got nan"),
    (dict(adv="pgd", adv_eps=float("inf")), "`adv_eps` must be a finite number, got inf"),
    (dict(weight_decay=float("nan")), "`weight_decay` must be a finite number, got nan"),
    (dict(adv="trades", trades_beta=-1.0), "`trades_beta` must be >= 0, got -1.0"),
    (dict(adv="pgd", trades_beta=-1.0), "`trades_beta` must be >= 0, got -1.0"),  # the trainer's attack refuses it
])
def test_non_finite_and_out_of_range_floats_are_refused(tmp_path, overrides, message):
    # NaN passed the old `<= 0` checks, trained, and a rerun was then refused as "a different run (nan vs nan)".
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        train(_config(tmp_path, **overrides))
    assert not (tmp_path / "run").exists()


def test_settings_that_do_nothing_are_named():
    given = {"adv_eps", "trades_beta", "bce_weight", "local_dir", "learning_rate"}
    assert TrainConfig(arch="preact_resnet18").inactive_settings(given) == [
        ("adv_eps", "adv", "none"), ("trades_beta", "adv", "none"), ("bce_weight", "arch", "preact_resnet18"),
        ("local_dir", "dataset", "synthetic")]
    assert TrainConfig(adv="pgd").inactive_settings(given) == [("trades_beta", "adv", "pgd"),
                                                               ("local_dir", "dataset", "synthetic")]


def test_non_finite_loss_names_only_a_checkpoint_that_exists_and_float32_only_when_not_in_use(tmp_path):
    # A learning rate of 1e30 blows the loss up in the first epoch: no checkpoint exists yet.
    with pytest.raises(UsageError) as caught:
        train(_config(tmp_path, learning_rate=1e30, epochs=2))
    message = str(caught.value)
    assert "in epoch 1" in message and "no epoch had finished, so there is no checkpoint" in message, message
    assert "float32" not in message and "lower `learning_rate`" in message
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())
    from mocse_tf.training.run import non_finite_message

    kept = non_finite_message("loss became nan at batch 3", 2, _config(tmp_path, precision="mixed_float16"),
                              str(tmp_path / "run" / "checkpoints" / "ckpt-2"))
    assert f"(epoch 2) is kept in {tmp_path / 'run' / 'checkpoints'}" in kept and "`precision`=float32" in kept
