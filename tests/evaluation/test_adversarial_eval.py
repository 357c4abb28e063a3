"""Adversarial evaluation (bin/eval_adv): attack names, per-example robust and worst-case accuracy on a trained tiny
network with experts, the report it writes or merges into bin/eval_c's, and its bad-input errors."""

import json
import shutil

import keras
import numpy as np
import pytest

from mocse_tf import export, files
from mocse_tf.data import load_arrays
from mocse_tf.errors import UsageError
from mocse_tf.evaluation import adversarial_eval, report as report_lib
from mocse_tf.evaluation.config import EvalConfig
from mocse_tf.models import preact_resnet18
from tests.cli_helpers import outcome, run_tool

EPS = 8 / 255


def tiny_expert_net(num_classes=10, seed=0):
    """A small conv net with MoCSE's outputs: expert logits [B, N, 2] and their margins as class logits."""
    keras.utils.set_random_seed(seed)
    pixels = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(pixels)
    for filters in (8, 16, 32):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    expert_logits = keras.layers.Reshape((num_classes, 2), name="expert_logits")(keras.layers.Dense(2 * num_classes)(x))
    margins = keras.layers.Subtract(name="logits")([expert_logits[..., 1], expert_logits[..., 0]])
    return keras.Model(pixels, {"logits": margins, "expert_logits": expert_logits})


@pytest.fixture(scope="module")
def trained_expert_net():
    """The tiny expert net after a few seconds of training on the synthetic set (well above chance clean)."""
    network = tiny_expert_net()
    train = load_arrays("synthetic", "train", num_examples=1000)
    network.compile(optimizer=keras.optimizers.Adam(3e-3),
                    loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    network.fit(train.images.astype(np.float32), {"logits": train.labels}, batch_size=50, epochs=5, verbose=0)
    return network


# --- attack names --------------------------------------------------------------------------------------------


def test_attack_names_and_labels():
    specs = adversarial_eval.parse_attacks("default", restarts=3)
    assert [s.name for s in specs] == ["pgd20", "pgd50", "apgd_ce", "apgd_dlr", "apgd_total", "apgd_bce"]
    assert [(s.kind, s.steps, s.objective, s.restarts) for s in specs[:4]] == [
        ("pgd", 20, "ce", 3), ("pgd", 50, "ce", 3), ("apgd", 100, "ce", 3), ("apgd", 100, "dlr", 3)]
    assert [(s.objective, s.needs_experts, s.only_if_experts) for s in specs[4:]] == [
        ("mocse_total", True, True), ("expert_bce", True, True)]
    assert [s.label(EPS, "linf") for s in specs[:3]] == [
        "PGD-20x3, CE (Linf 8/255)", "PGD-50x3, CE (Linf 8/255)", "APGD-100x3, CE (Linf 8/255)"]
    fgsm, pgd, apgd = adversarial_eval.parse_attacks(" FGSM, pgd7_total ,apgd12_bce,pgd7_total", restarts=1)
    assert (fgsm.steps, fgsm.label(0.5, "l2")) == (1, "FGSM, CE (L2 0.5)")
    assert (pgd.objective, pgd.needs_experts, pgd.only_if_experts) == ("mocse_total", True, False)
    assert apgd.label(4 / 255, "linf") == "APGD-12, expert BCE (Linf 4/255)"
    assert adversarial_eval.check_budget(None, "l2") == 0.5 and adversarial_eval.check_budget(None, "linf") == EPS
    apgdt, apgdt_margin = adversarial_eval.parse_attacks("apgdt,apgdt50_margindlr")
    assert (apgdt.kind, apgdt.steps, apgdt.objective, apgdt.label(EPS, "linf")) == (
        "apgdt", 100, "dlr", "APGD-T-100, DLR (Linf 8/255)")
    assert (apgdt_margin.steps, apgdt_margin.objective, apgdt_margin.needs_experts) == (50, "margin_dlr", True)
    margin_cw, margin_dlr = adversarial_eval.parse_attacks("apgd_margincw,apgd20_margindlr")
    assert (margin_cw.objective, margin_cw.needs_experts, margin_dlr.objective) == ("margin_cw", True, "margin_dlr")
    assert margin_cw.label(EPS, "linf") == "APGD-100, experts' CW margin (Linf 8/255)"
    (auto,) = adversarial_eval.parse_attacks("autoattack", restarts=5)
    assert (auto.kind, auto.restarts, auto.label(0.5, "l2")) == ("autoattack", 1, "AutoAttack (worst case) (L2 0.5)")


@pytest.mark.parametrize("spec, fragment", [
    ("cw", "unknown attack 'cw'"), ("pgd", "how many PGD steps"), ("apgd", "name APGD's objective"),
    ("fgsm3", "FGSM is one step"), ("pgd20_kl", "unknown objective 'kl'"), (",", "no attack named"),
    ("pgd0", "at least 1"),
])
def test_bad_attack_names(spec, fragment):
    with pytest.raises(UsageError, match=fragment):
        adversarial_eval.parse_attacks(spec)


# --- robust accuracy, per example ----------------------------------------------------------------------------


def test_robust_and_worst_case_accuracy_per_example(trained_expert_net):
    test = load_arrays("synthetic", "test", num_examples=80)
    specs = adversarial_eval.parse_attacks("fgsm,pgd4,apgd4_dlr,apgdt3,pgd4_total,pgd4_bce")
    results = adversarial_eval.evaluate_network(trained_expert_net, specs, test.images, test.labels, eps=EPS,
                                                norm="linf", batch_size=50, log=lambda line: None)
    correct = results["correct"]
    clean, robust = correct["clean"], {spec: correct[spec] for spec in specs}
    assert results["clean"] == pytest.approx(clean.mean()) and results["clean"] > 0.25
    for spec in specs:
        assert not np.any(robust[spec] & ~clean), spec.name  # robust only where correct clean
        assert results["robust"][spec] == pytest.approx(robust[spec].mean())
    worst = np.logical_and.reduce([clean] + list(robust.values()))
    assert results["worst_case"] == pytest.approx(worst.mean())
    assert results["worst_case"] <= min(results["robust"].values())
    # The network is not robust at 8/255: every attack fools it on most clean-correct images.
    assert all(accuracy < 0.6 * results["clean"] for accuracy in results["robust"].values())

    # Attacks on the experts' outputs run only on networks that have experts.
    plain = keras.Model(trained_expert_net.input, {"logits": trained_expert_net.output["logits"]})
    plain_results = adversarial_eval.evaluate_network(plain, specs[:1] + specs[4:], test.images[:10], test.labels[:10],
                                                      eps=EPS, norm="linf", log=lambda line: None)
    assert [s.name for s in plain_results["robust"]] == ["fgsm"]


# --- bin/eval_adv ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory, trained_expert_net):
    """bin/train's export layout, saved_models/<run>/1 (SavedModel) beside saved_models/<run>/model.keras, of the
    trained tiny expert net."""
    run = tmp_path_factory.mktemp("saved_models") / "tiny_run"
    saved_model = export.export_saved_model(trained_expert_net, str(run))
    files.save_keras(trained_expert_net, str(run / "model.keras"))
    return {"saved_model": saved_model, "keras": str(run / "model.keras")}


def test_eval_adv_merges_its_rows_into_an_eval_c_report(tmp_path, exported_run):
    # A bin/eval_c-style report of the same run (named tiny_run, as eval_c names saved_models/tiny_run/1) and of a
    # model that eval_adv does not evaluate.
    eval_c = tmp_path / "eval_c"
    report_lib.write_report(report_lib.build_report({
        "tiny_run": {"path": "x", "clean": 0.5, "num_clean_examples": 2000,
                     "corruptions": {"gaussian_noise": {"1": 0.4, "3": 0.2}}},
        "other": {"path": "y", "clean": 0.7, "corruptions": {"gaussian_noise": {"1": 0.6, "3": 0.5}}},
    }, {"dataset": "synthetic", "source": "generate"}), str(eval_c))
    out = tmp_path / "merged"
    code, stdout, stderr = outcome(run_tool(
        "eval_adv", "--model", exported_run["saved_model"], "--dataset=synthetic", "--num_examples=60", "--batch_size=30",
        "--attacks=pgd3,apgd3_ce,pgd3_total", f"--merge_with={eval_c}", f"--output_dir={out}"))
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    ours, other = report["models"]["tiny_run"], report["models"]["other"]
    assert other == report_lib.load_report(str(eval_c / "report.json"))["models"]["other"]  # kept as it was
    assert ours["clean"] == 0.5 and ours["corruptions"]["gaussian_noise"] == {"1": 0.4, "3": 0.2}
    rows = ours["adversarial"]
    assert list(rows) == ["Clean (the 60 attacked images)", "PGD-3, CE (Linf 8/255)", "APGD-3, CE (Linf 8/255)",
                          "PGD-3, total loss CE+BCE (Linf 8/255)", "Worst case over all attacks (Linf 8/255)"]
    clean, *attacked, worst = rows.values()
    assert clean > 0.25 and all(worst <= value <= clean for value in attacked)
    assert report["config"]["source"] == "generate" and report["config"]["adversarial"]["num_examples"] == 60
    table = (out / "table1.md").read_text()
    assert "| **Noise** | Gaussian Noise |" in table and "| **Adversarial** | Clean (the 60 attacked images) |" in table
    assert table in stdout and "Adversarial rows: accuracy on the first 60 test images of synthetic" in table
    assert {row["section"] for row in report_lib.csv_rows(report)} == {"clean", "corruption", "adversarial"}


def test_bad_input_exits_2_with_one_error_line(tmp_path):
    # One real process; the other messages travel the same way (a UsageError that mocse_tf.cli turns into one
    # line and exit status 2) and are checked in process below.
    lone = tmp_path / "lone" / "1"  # a SavedModel folder with no model.keras beside it
    lone.mkdir(parents=True)
    (lone / "saved_model.pb").write_bytes(b"")
    code, stdout, stderr = outcome(run_tool("eval_adv", "--model", str(lone), f"--output_dir={tmp_path / 'out'}"))
    assert code == 2, stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and "Traceback" not in stderr, stderr
    assert "gives no input gradients" in error_lines[0] and "model.keras lies beside it" in error_lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arguments, fragment", [
    ({"models": []}, "no model to evaluate"),
    ({"eps": 2.0}, "`eps` is a radius in \\[0, 1\\]"),
    ({"norm": "l1"}, "unknown norm 'l1'; choose one of linf, l2"),
    ({"restarts": 0}, "`restarts` must be an integer >= 1"),
    ({"num_examples": -1}, "`num_examples` must be 0"),
    ({"merge_with": "missing/report.json"}, "no such report"),
    ({"models": ["three_classes"]}, "predicts 3 classes but `dataset`=synthetic has 10"),
    ({"attacks": "pgd3_bce", "models": ["plain"]}, "no `models` is a MoCSE network"),
    ({"models": ["mismatched"]}, "gives different logits than the SavedModel"),
    ({"attacks": "autoatack"}, "unknown attack 'autoatack'"),
    ({"attacks": "autoattack", "square_queries": 0}, "`square_queries` must be an integer >= 1, got 0"),
    ({"attacks": "autoattack", "targets": 10}, "`targets`=10: .* has 10 classes; use `targets` <= 9"),
    ({"eps": 1.5, "norm": "l2"}, "`eps` is a radius in \\[0, 1\\]"),
])
def test_bad_input_messages(tmp_path, exported_run, arguments, fragment):
    paths = {"plain": str(tmp_path / "plain.keras"), "three_classes": str(tmp_path / "three_classes.keras")}
    if arguments.get("models") == ["plain"]:
        preact_resnet18(width=2).save(paths["plain"])
    if arguments.get("models") == ["three_classes"]:
        preact_resnet18(num_classes=3, width=2).save(paths["three_classes"])
    if arguments.get("models") == ["mismatched"]:  # the SavedModel beside the model.keras of another network
        paths["mismatched"] = str(shutil.copytree(exported_run["saved_model"], tmp_path / "run" / "1"))
        files.save_keras(tiny_expert_net(seed=1), str(tmp_path / "run" / "model.keras"))
    settings = {"models": [exported_run["keras"]], "dataset": "synthetic", "num_examples": 10, "attacks": "pgd1",
                "output_dir": str(tmp_path / "out"), **arguments}
    settings["models"] = [paths.get(m, m) for m in settings["models"]]
    with pytest.raises(UsageError, match=fragment):
        adversarial_eval.run_eval_adv(EvalConfig(**settings), log=lambda line: None)
    assert not (tmp_path / "out").exists()


def test_autoattack_rows_sanity_and_worst_case(tmp_path, exported_run):
    lines = []
    report, written, markdown = adversarial_eval.run_eval_adv(EvalConfig(
        models=[exported_run["keras"]], dataset="synthetic", num_examples=24, batch_size=24, eps=2 / 255,
        attacks="pgd2,autoattack", square_queries=30, output_dir=str(tmp_path / "out")), log=lines.append)
    (entry,) = report["models"].values()
    rows = entry["adversarial"]
    stages = ["APGD-CE", "APGD-T", "FAB-T", "Square", "APGD-MARGIN-CW", "APGD-T-MARGIN-DLR"]  # + margins: MoCSE
    assert list(rows) == ["PGD-2, CE (Linf 2/255)"] + [f"AutoAttack after {s} (Linf 2/255)" for s in stages] + [
        "AutoAttack (worst case) (Linf 2/255)", "Worst case over all attacks (Linf 2/255)"]
    after = [rows[f"AutoAttack after {s} (Linf 2/255)"] for s in stages]
    assert entry["clean"] >= after[0] and all(a >= b for a, b in zip(after, after[1:]))  # cumulative
    assert rows["AutoAttack (worst case) (Linf 2/255)"] == after[-1]
    assert rows["Worst case over all attacks (Linf 2/255)"] <= min(after[-1], rows["PGD-2, CE (Linf 2/255)"])
    # Robust accuracy printed after each stage; sanity section stored.
    for stage in stages:
        assert any(f"AutoAttack robust accuracy after {stage}:" in line for line in lines), stage
    sanity = entry["sanity"]
    assert sanity["repeatable"] and set(sanity["zero_gradient_fraction"]) >= {"pgd2", "autoattack APGD-CE"}
    assert all(0 <= f <= 1 for f in sanity["zero_gradient_fraction"].values())
    assert list(json.loads(open(written["json"]).read())["models"].values())[0]["sanity"] == sanity
    csv_text = open(written["csv"]).read()
    assert "AutoAttack (worst case) (Linf 2/255)" in csv_text and "AutoAttack (worst case)" in markdown
