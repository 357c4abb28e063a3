"""keras-tuner search: the search space, the validation split and objective, resuming, and a flagfile that
bin/train accepts."""

import json
import pathlib

import keras_tuner
import numpy as np
import pytest

from mocse_tf import corruptions
from mocse_tf.errors import UsageError
from mocse_tf.training import tune
from mocse_tf.training.config import TrainConfig
from tests.cli_helpers import run_tool


def test_mocse_search_space_has_the_documented_hyperparameters():
    hp = keras_tuner.HyperParameters()
    config = tune.trial_config(TrainConfig(arch="mocse"), hp, (8, 16))
    assert set(hp.values) == {"learning_rate", "weight_decay", "width", "bce_weight", "aggregate"}
    assert 0.01 <= config.learning_rate <= 0.4 and 1e-5 <= config.weight_decay <= 2e-3
    assert config.width in (8, 16) and 0.0 <= config.bce_weight <= 2.0
    assert hp.get("aggregate") == config.aggregate
    aggregate = next(p for p in hp.space if p.name == "aggregate")
    assert set(aggregate.values) == {"margin", "true_logit", "true_log_prob", "true_prob"}


def test_pgd_step_size_is_searched_only_when_adversarial():
    hp = keras_tuner.HyperParameters()
    config = tune.trial_config(TrainConfig(arch="preact_resnet18", adv="pgd", adv_eps=0.03), hp, (16,))
    assert set(hp.values) == {"learning_rate", "weight_decay", "width", "adv_step_size"}  # no MoCSE terms
    assert 0.003 <= config.adv_step_size <= 0.015


def test_validation_split_is_a_seeded_disjoint_part_of_the_training_set():
    images = np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1) * np.ones((1, 32, 32, 3), np.uint8)
    labels = np.arange(50) % 10
    train_x, train_y, val_x, val_y = tune.split_validation(images, labels, 0, seed=3)
    assert len(val_y) == 5 and len(train_y) == 45  # a tenth by default
    assert not set(train_x[:, 0, 0, 0]) & set(val_x[:, 0, 0, 0])
    assert set(train_x[:, 0, 0, 0]) | set(val_x[:, 0, 0, 0]) == set(range(50))
    again = tune.split_validation(images, labels, 0, seed=3)
    np.testing.assert_array_equal(again[2], val_x)
    assert not np.array_equal(tune.split_validation(images, labels, 0, seed=4)[2], val_x)
    with pytest.raises(UsageError, match="leaves no training images"):
        tune.split_validation(images, labels, 50, seed=3)


def test_corruption_objective_uses_only_the_four_extra_corruptions():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3])
    sets = tune.validation_sets(images, labels, "extra_corruptions", (1, 3), seed=0)
    extra = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
    assert sorted(sets) == sorted(["clean"] + [f"{n}_{s}" for n in extra for s in (1, 3)])
    assert not set(extra) & set(corruptions.BENCHMARK)
    for name, (corrupted, corrupted_labels) in sets.items():
        assert corrupted.dtype == np.uint8 and corrupted.shape == images.shape
        assert (corrupted_labels == labels).all()
        assert (name == "clean") == np.array_equal(corrupted, images)
    assert list(tune.validation_sets(images, labels, "clean", (1,), seed=0)) == ["clean"]


def test_bad_search_settings_are_usage_errors():
    config = TrainConfig()
    with pytest.raises(UsageError, match="unknown tuner 'grid'; choose one of random, hyperband, bayesian"):
        tune.SearchSettings(tuner="grid").validate(config)
    with pytest.raises(UsageError, match="unknown objective 'robust'; choose one of clean, extra_corruptions"):
        tune.SearchSettings(objective="robust").validate(config)
    with pytest.raises(UsageError, match="severities from 1 to 5"):
        tune.SearchSettings(corruption_severities=(0, 2)).validate(config)
    with pytest.raises(UsageError, match="`max_trials` must be a positive integer"):
        tune.SearchSettings(max_trials=0).validate(config)
    with pytest.raises(UsageError, match="use `strategy`=default or mirrored"):
        tune.SearchSettings().validate(TrainConfig(strategy="multi_worker"))
    with pytest.raises(UsageError, match="`width_choices` must be a comma-separated list of integers, got 8,x"):
        tune.SearchSettings(width_choices=["8", "x"]).validate(config)
    # The list flags arrive as strings and leave as integers.
    parsed = tune.SearchSettings(corruption_severities=["1", "3"], width_choices=["8"]).validate(config)
    assert (parsed.corruption_severities, parsed.width_choices) == ((1, 3), (8,))


class _OneUnit(keras_tuner.HyperModel):
    """The smallest real hypermodel: the tuners build one model at construction to learn the search space."""

    def build(self, hp):
        import keras

        inputs = keras.Input((1,))
        return keras.Model(inputs, keras.layers.Dense(hp.Int("units", 1, 2))(inputs))


def test_every_tuner_kind_is_built_and_hyperband_is_capped(tmp_path):
    for kind, expected in (("random", keras_tuner.RandomSearch), ("bayesian", keras_tuner.BayesianOptimization),
                           ("hyperband", keras_tuner.Hyperband)):
        settings = tune.SearchSettings(tuner=kind, max_trials=3, objective="clean")
        tuner = tune.make_tuner(settings, _OneUnit(), TrainConfig(epochs=9), str(tmp_path), kind)
        assert isinstance(tuner, expected)
        assert tuner.oracle.max_trials == 3
        assert tuner.oracle.objective.name == "val_clean_accuracy" and tuner.oracle.objective.direction == "max"


def test_flagfile_lists_tuned_and_changed_flags_only():
    config = TrainConfig(arch="mocse", width=8, learning_rate=0.05, nesterov=True, output_dir="x", verbose=2)
    lines = tune.flagfile_lines(config, ["best of 2"], ["learning_rate", "width", "weight_decay"])
    assert lines[0] == "# best of 2"
    assert "--learning_rate=0.05" in lines and "--width=8" in lines and "--nesterov" in lines
    assert "--weight_decay=0.0005" in lines  # tuned: written even at its default
    assert "--arch=mocse" in lines and "--dataset=synthetic" in lines and "--epochs=200" in lines
    assert not any(line.startswith(("--output_dir", "--verbose", "--jit_compile", "--nojit_compile",
                                    "--momentum")) for line in lines)


def _search(tune_dir):
    config = TrainConfig(arch="preact_resnet18", dataset="synthetic", num_train_examples=96, batch_size=16,
                         epochs=1, steps_per_epoch=2, verbose=0, run_name="tiny")
    settings = tune.SearchSettings(tuner="random", max_trials=2, objective="extra_corruptions",
                                   num_validation_examples=16, corruption_severities=(1,), width_choices=(4,),
                                   tune_dir=str(tune_dir))
    return tune.tune(config, settings)


def test_a_folder_holding_other_files_is_not_taken_for_a_search(tmp_path):
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"`tune_dir` .*search holds files \(notes.txt\) and no search_config.json"):
        _search(tmp_path / "search")
    assert sorted(p.name for p in (tmp_path / "search").iterdir()) == ["notes.txt"]


def test_two_trial_search_resumes_and_writes_a_flagfile_bin_train_accepts(tmp_path, capsys):
    tune_dir = tmp_path / "search"
    result = _search(tune_dir)
    summary = json.loads(pathlib.Path(result["summary"]).read_text())
    assert [t["trial_id"] for t in sorted(summary["trials"], key=lambda t: t["trial_id"])] == ["0", "1"]
    assert summary["objective"] == "val_extra_corruptions_accuracy"
    assert 0.0 <= summary["score"] <= 1.0
    assert summary["score"] == max(t["score"] for t in summary["trials"])
    flagfile = pathlib.Path(result["flagfile"])
    assert flagfile == tune_dir / "best.flags"
    lines = flagfile.read_text().splitlines()
    assert f"--learning_rate={summary['hyperparameters']['learning_rate']!r}" in lines

    # Rerunning the same search resumes it: both trials are done, so none is trained again.
    trial_files = sorted(str(p) for p in tune_dir.rglob("trial.json"))
    capsys.readouterr()
    assert _search(tune_dir)["score"] == summary["score"]
    assert "resuming the search" in capsys.readouterr().out
    assert sorted(str(p) for p in tune_dir.rglob("trial.json")) == trial_files
    with pytest.raises(UsageError, match="holds a different search"):
        tune.tune(TrainConfig(arch="preact_resnet18", num_train_examples=96, batch_size=8, epochs=1, verbose=0),
                  tune.SearchSettings(max_trials=2, num_validation_examples=16, tune_dir=str(tune_dir)))

    # bin/train takes the flagfile as it is; run and export folders come from the command line.
    completed = run_tool("train", f"--flagfile={flagfile}", "--num_test_examples=16", f"--output_dir={tmp_path / 'run'}",
                         f"--export_dir={tmp_path / 'exports'}", "--verbose=0", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    trained = json.loads((tmp_path / "run" / "run_config.json").read_text())
    for name, value in summary["hyperparameters"].items():
        assert trained[name] == value, name
    assert json.loads((tmp_path / "run" / "results.json").read_text())["epochs_trained"] == 1
