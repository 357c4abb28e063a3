"""bin/make_c and bin/eval_c end to end on tiny synthetic data, their bad-input errors (exit 2, one `error:` line,
no traceback), and run_eval_c in process for the generate and tfds sources and the class-count check."""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mocse_tf.errors import UsageError
from mocse_tf.evaluation.config import EvalConfig
from mocse_tf.evaluation.corruption_eval import run_eval_c
from tests.cli_helpers import assert_clean_error, outcome, run_all, run_tool, tool_command

PLOTS = ("accuracy_per_corruption.png", "accuracy_vs_severity.png", "contact_sheet.png")
REPORT_FILES = ("report.json", "accuracy.csv", "table1.md") + PLOTS


def test_make_c_then_eval_c_from_the_folder(tmp_path, tiny_models):
    c_dir, out_dir = tmp_path / "synthetic-c", tmp_path / "report"
    code, stdout, stderr = outcome(run_tool("make_c", "--dataset=synthetic", f"--output_dir={c_dir}",
                                            "--corruptions=gaussian_noise,contrast", "--num_examples=40", "--seed=2"))
    assert code == 0, stderr
    assert sorted(os.listdir(c_dir)) == ["contrast.npy", "gaussian_noise.npy", "labels.npy", "make_c.json"]
    assert np.load(c_dir / "contrast.npy", mmap_mode="r").shape == (200, 32, 32, 3)
    assert "wrote 2 corruption(s)" in stdout

    code, stdout, stderr = outcome(run_tool(
        "eval_c", "--model", tiny_models["saved_model"], "--model", tiny_models["keras"], "--model_name=sm",
        "--model_name=k", "--source=folder", f"--c_dir={c_dir}", "--severities=1,3",
        "--corruptions=gaussian_noise,contrast", "--batch_size=16", "--baseline=sm", f"--output_dir={out_dir}"))
    assert code == 0, stderr
    assert all((out_dir / name).is_file() for name in REPORT_FILES)
    report = json.loads((out_dir / "report.json").read_text())
    assert report["config"]["dataset"] == "synthetic"  # taken from make_c.json
    assert report["config"]["num_clean_examples"] == 40  # clean accuracy on exactly the images that were corrupted
    for name in ("sm", "k"):
        cells = report["models"][name]["corruptions"]
        assert sorted(cells) == ["contrast", "gaussian_noise"] and all(sorted(c) == ["1", "3"] for c in cells.values())
    # The same network in two formats gives the same numbers; the table is printed.
    assert report["models"]["sm"]["corruptions"] == report["models"]["k"]["corruptions"]
    assert "| **Noise** | Gaussian Noise |" in stdout and "mCE vs sm" in stdout


def test_bad_input_exits_2_with_one_error_line(tmp_path):
    # One case per tool, run as real processes; the other messages are checked in process below (they travel
    # the same way: a UsageError that mocse_tf.cli turns into one line and exit status 2).
    not_a_model = tmp_path / "weights.h5"
    not_a_model.write_bytes(b"")
    cases = {
        "model path": (("eval_c", "--model", str(not_a_model)), ["neither a SavedModel", "weights.h5"]),
        "make_c corruption": (("make_c", "--dataset=synthetic", f"--output_dir={tmp_path / 'c'}",
                               "--corruptions=snow,blizzard"), ["unknown corruption 'blizzard'", "gaussian_noise"]),
        # A library message names settings (`model_names`, `models`); the tool shows them as its flags.
        "settings as flags": (("eval_adv", "--model", str(not_a_model), "--model_name=a", "--model_name=b"),
                              ["error: 2 --model_name for 1 --model; give one name per model"]),
    }
    results = run_all([tool_command(*command) for command, _ in cases.values()])  # side by side: faster
    for (_, fragments), result in zip(cases.values(), results):
        assert_clean_error(result, *fragments)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("arguments, fragment", [
    ({"corruptions": "fog,fogg"}, "unknown corruption 'fogg'; expected one of: gaussian_noise"),
    ({"severities": "1,6"}, "severity 6 is outside 1..5"),
    ({"batch_size": 0}, "`batch_size` must be a positive integer"),
    ({"source": "folder", "c_dir": None}, "`source`=folder needs `c_dir`"),
    ({"source": "folder", "c_dir": "MISSING", "corruptions": "gaussian_noise,glass_blur"},
     "lacks glass_blur.npy"),
])
def test_bad_arguments_fail_before_any_loading(tmp_path, tiny_models, released_folder, arguments, fragment):
    if arguments.get("c_dir") == "MISSING":
        (released_folder / "glass_blur.npy").unlink()
        arguments = dict(arguments, c_dir=str(released_folder))
    with pytest.raises(UsageError) as caught:
        run_eval_c(EvalConfig(models=[tiny_models["keras"]], output_dir=str(tmp_path / "out"), **arguments))
    assert fragment in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_generate_source_in_process(tmp_path, tiny_models):
    report, paths, markdown = run_eval_c(EvalConfig(
        models=[tiny_models["keras"]], source="generate", dataset="synthetic", corruptions="gaussian_noise,fog",
        severities="2,5", num_examples=30, batch_size=16, output_dir=str(tmp_path), seed=1), show_progress=False)
    assert sorted(os.path.basename(p) for p in paths.values()) == sorted(REPORT_FILES)
    config = report["config"]
    assert config["source"] == "generate" and config["seed"] == 1 and config["seed_chunk"] == 250
    assert config["corruptions"] == ["gaussian_noise", "fog"] and config["severities"] == [2, 5]
    assert report["models"]["tiny"]["num_examples"] == 30
    assert "| **Weather** | Fog |" in markdown


def test_tfds_source_in_process_on_mock_data(tmp_path, tiny_models):
    manual = tmp_path / "tfds" / "downloads" / "manual"
    manual.mkdir(parents=True)
    (manual / "CIFAR-10-C.tar").write_bytes(b"")  # "prepared offline": tfds' preparation is mocked below
    with tfds.testing.mock_data(num_examples=12):
        report, _, _ = run_eval_c(EvalConfig(
            models=[tiny_models["saved_model"]], source="tfds", data_dir=str(tmp_path / "tfds"), dataset="synthetic",
            corruptions="impulse_noise", severities="4", num_examples=10, batch_size=4,
            output_dir=str(tmp_path / "out")), show_progress=False)
    model = report["models"]["tiny_run"]
    assert model["num_examples"] == 10 and list(model["corruptions"]) == ["impulse_noise"]
    assert report["config"]["source"] == "tfds"


def test_class_count_mismatch_is_a_usage_error(tmp_path):
    import keras

    from mocse_tf.models import preact_resnet18

    keras.utils.set_random_seed(0)
    path = tmp_path / "three_classes.keras"
    preact_resnet18(num_classes=3, width=4).save(path)
    with pytest.raises(UsageError) as caught:
        run_eval_c(EvalConfig(models=[str(path)], source="generate", dataset="synthetic", corruptions="fog",
                   num_examples=5, output_dir=str(tmp_path / "out")), show_progress=False)
    assert "predicts 3 classes but `dataset`=synthetic has 10" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_model_name_and_baseline_errors(tiny_models, tmp_path):
    with pytest.raises(UsageError, match="2 `model_names` for 1 `models`"):
        run_eval_c(EvalConfig(models=[tiny_models["keras"]], model_names=["a", "b"], output_dir=str(tmp_path)))
    with pytest.raises(UsageError, match="`baseline` 'x' is not one of the model names"):
        run_eval_c(EvalConfig(models=[tiny_models["keras"]], baseline="x", output_dir=str(tmp_path)))
    with pytest.raises(UsageError, match="unknown source 'web'; choose one of tfds, folder, generate"):
        run_eval_c(EvalConfig(models=[tiny_models["keras"]], source="web", output_dir=str(tmp_path)))
    with pytest.raises(UsageError, match="no model to evaluate"):
        run_eval_c(EvalConfig(models=[], output_dir=str(tmp_path)))


def test_unprepared_tfds_offline_fails_before_loading_anything(tmp_path, tiny_models, monkeypatch):
    from mocse_tf.data import tfds_source

    monkeypatch.setattr(tfds_source, "network_reachable", lambda: False)
    with pytest.raises(UsageError) as caught:
        run_eval_c(EvalConfig(models=[tiny_models["keras"]], source="tfds", data_dir=str(tmp_path / "tfds"),
                   dataset="synthetic", output_dir=str(tmp_path / "out")), show_progress=False)
    assert "cifar10_corrupted/gaussian_noise_1" in str(caught.value) and "CIFAR-10-C.tar" in str(caught.value)
    assert not (tmp_path / "out").exists()
