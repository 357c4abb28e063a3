"""bin/table1 end to end: the orchestration (skip what is finished, redo only what is missing) with fake stages in
process, and the real tool in a subprocess at the tiniest scale (slow), including a training resumed at its
last epoch and bad input."""

import json
import os

import pytest

from mocse_tf.experiments import table1
from tests.cli_helpers import assert_clean_error, run_tool


@pytest.fixture
def fake_stages(monkeypatch):
    """Replaces training and evaluation by stand-ins that write what the real stages write; records the calls."""
    from mocse_tf.evaluation import report as report_lib

    calls = []

    def fake_train(train_cfg, on_epoch):
        calls.append(("train", train_cfg.run_name))
        for epoch in range(table1._epochs_done(train_cfg), train_cfg.epochs):
            history = [{"epoch": e + 1} for e in range(epoch + 1)]
            os.makedirs(train_cfg.output_dir, exist_ok=True)
            json.dump(history, open(os.path.join(train_cfg.output_dir, "history.json"), "w"))
            on_epoch(epoch + 1, {"val_accuracy": 0.5})
        json.dump({"epochs_trained": train_cfg.epochs}, open(os.path.join(train_cfg.output_dir, "results.json"), "w"))
        os.makedirs(os.path.join(train_cfg.export_dir, train_cfg.run_name), exist_ok=True)
        open(os.path.join(train_cfg.export_dir, train_cfg.run_name, "model.keras"), "w").close()

    def fake_eval(kind):
        def evaluate(config, run, keras_path, output_dir):
            calls.append((kind, run.name))
            assert os.path.isfile(keras_path)
            accuracy = 0.5 + 0.01 * run.seed + (0.02 if run.arch == "mocse" else 0.0)
            entry = {"clean": accuracy, "corruptions": {"fog": {"1": accuracy / 2}}} if kind == "corruption" \
                else {"adversarial": {"PGD-20 (Linf 8/255)": accuracy / 10}}
            report_lib.write_report(report_lib.build_report({run.name: entry}), output_dir)
        return evaluate

    monkeypatch.setattr(table1, "_train", fake_train)
    monkeypatch.setattr(table1, "_evaluate_corruptions", fake_eval("corruption"))
    monkeypatch.setattr(table1, "_evaluate_attacks", fake_eval("adversarial"))
    monkeypatch.setattr(table1, "_make_corrupted_set", lambda config: calls.append(("make_c", "")))
    monkeypatch.setattr(table1, "_dataset_sizes", lambda config: (256, 20))
    return calls


def test_rerun_skips_finished_work_and_redoes_only_what_is_missing(tmp_path, fake_stages):
    config = table1.Table1Config(output_dir=str(tmp_path / "t"), seeds="0,1", rows="standard", epochs=2)
    lines = []
    paths = table1.run_table1(config, log=lines.append)
    assert [c for c in fake_stages if c[0] == "train"] == [
        ("train", "standard_preact_resnet18_seed0"), ("train", "standard_mocse_seed0"),
        ("train", "standard_preact_resnet18_seed1"), ("train", "standard_mocse_seed1")]
    assert sum(c[0] == "corruption" for c in fake_stages) == 4 and sum(c[0] == "adversarial" for c in fake_stages) == 4
    assert any("train epoch 2/2" in line and "left" in line for line in lines)
    table = json.load(open(paths["json"]))
    assert table["differences"]["standard"]["mocse"]["clean"]["mean"] == pytest.approx(0.02)

    fake_stages.clear()
    lines.clear()
    table1.run_table1(config, log=lines.append)
    assert fake_stages == [("make_c", "")]  # make_c itself skips complete corruptions
    assert "estimate after" not in lines[0]  # the rates measured by the first invocation were kept
    assert sum("skipped" in line for line in lines) == 4 * 3

    # A lost evaluation and a training stopped after its first epoch: only those are redone, the training resumed.
    os.remove(os.path.join(table1._eval_dir(config, table1.Run("standard", "mocse", None, 1), "adversarial"),
                           "report.json"))
    run_dir = tmp_path / "t" / "train" / "standard_preact_resnet18_seed1"
    os.remove(run_dir / "results.json")
    json.dump([{"epoch": 1}], open(run_dir / "history.json", "w"))
    fake_stages.clear()
    lines.clear()
    table1.run_table1(config, log=lines.append)
    assert fake_stages == [("make_c", ""), ("train", "standard_preact_resnet18_seed1"),
                           ("corruption", "standard_preact_resnet18_seed1"),  # a retrained model: evaluated again
                           ("adversarial", "standard_preact_resnet18_seed1"), ("adversarial", "standard_mocse_seed1")]
    assert any("training resumes after epoch 1/2" in line for line in lines)


def test_dry_run_writes_nothing(tmp_path, fake_stages):
    lines = []
    config = table1.Table1Config(output_dir=str(tmp_path / "t"), seeds="0", rows="adversarial", epochs=2,
                                 batch_size=64, attacks="pgd20", dry_run=True)
    assert table1.run_table1(config, log=lines.append) == {}
    assert not (tmp_path / "t").exists() and fake_stages == []
    assert lines[1] == ("  [1/2] adversarial_preact_resnet18_seed0: train 512 x 11 forward+backward; validation 40 x 1 "
                        "forward; corruption 1,920 x 1 forward; adversarial 1,000 x 20 forward+backward")


TINY = ("--dataset=synthetic", "--seeds=0", "--rows=standard", "--epochs=2", "--width=1", "--expert_width=1",
        "--num_train_examples=32", "--batch_size=16", "--num_test_examples=4", "--num_attack_examples=4",
        "--attacks=fgsm", "--eval_batch_size=50")


def test_bad_input_gets_one_error_line(tmp_path):
    assert_clean_error(run_tool("table1", *TINY, "--rows=standard,robust", f"--output_dir={tmp_path}/a"),
                       "unknown row 'robust'")
    assert_clean_error(run_tool("table1", *TINY, "--seeds=", f"--output_dir={tmp_path}/a"), "no seed")
    assert_clean_error(run_tool("table1", *TINY, "--num_train_examples=8", f"--output_dir={tmp_path}/a"),
                       "fewer than one batch")


@pytest.mark.slow
def test_tiny_table_end_to_end_resumes_and_skips(tmp_path):
    """Two real trainings (PreAct-ResNet-18 and MoCSE, width 1, 2 epochs on 32 images), their evaluations and the
    table; then a rerun that skips everything, one that resumes a training at its last epoch, and a folder of
    another table refused without touching it."""
    out = tmp_path / "table"
    first = run_tool("table1", *TINY, f"--output_dir={out}", timeout=1200)
    assert first.returncode == 0, first.stderr[-3000:]
    for name in ("table1.md", "report.json", "table1.csv", "table1_accuracy.png", "table1_difference.png"):
        assert (out / name).is_file(), name
    table = json.load(open(out / "report.json"))
    assert table["cells"]["standard"]["mocse"]["clean"]["n"] == 1
    assert table["cells"]["standard"]["preact_resnet18"]["ece_clean"]["mean"] is not None
    assert "| Natural Samples |" in (out / "table1.md").read_text()
    model_file = out / "models" / "standard_mocse_seed0" / "model.keras"
    stamp = model_file.stat().st_mtime_ns

    again = run_tool("table1", *TINY, f"--output_dir={out}", timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped") == 2 * 3 and "training starts" not in again.stdout
    assert model_file.stat().st_mtime_ns == stamp  # nothing trained is written again

    # Back to the state of a training killed after epoch 1: checkpoint 1, one history entry, no results/export.
    run_dir = out / "train" / "standard_preact_resnet18_seed0"
    for path in (run_dir / "checkpoints").glob("ckpt-2*"):
        path.unlink()
    (run_dir / "checkpoints" / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-1"\nall_model_checkpoint_paths: "ckpt-1"\n')
    json.dump(json.load(open(run_dir / "history.json"))[:1], open(run_dir / "history.json", "w"))
    (run_dir / "results.json").unlink()
    (out / "models" / "standard_preact_resnet18_seed0" / "model.keras").unlink()
    resumed = run_tool("table1", *TINY, f"--output_dir={out}", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "standard preact_resnet18 seed 0: training resumes after epoch 1/2" in resumed.stdout
    assert "train epoch 2/2" in resumed.stdout and "train epoch 1/2" not in resumed.stdout
    assert len(json.load(open(run_dir / "history.json"))) == 2

    other = run_tool("table1", *TINY, "--epochs=3", f"--output_dir={out}", timeout=300)
    assert_clean_error(other, "belongs to another run", "epochs=2 there vs 3 now", "use a new --output_dir")
    assert model_file.stat().st_mtime_ns == stamp
