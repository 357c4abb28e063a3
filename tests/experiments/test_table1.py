"""bin/table1's library: argument checks, the plan and its costs, the recipe against configs/, the paper's data
file, and the table built from evaluation reports (mean +- std and paired differences by hand)."""

import json
import os

import pytest

from mocse_tf.errors import UsageError
from mocse_tf.evaluation import report as report_lib
from mocse_tf.experiments import table1
from mocse_tf.training.config import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("changes, fragment", [
    ({"rows": "standard,robust"}, "unknown row 'robust'; choose from standard, adversarial, augmented"),
    ({"seeds": " , "}, "no seed"),
    ({"seeds": "0,x"}, "seed 'x'"),
    ({"num_train_examples": 100, "batch_size": 128}, "fewer than one batch"),
    ({"mocse_aggregates": "margin,mean"}, "unknown MoCSE aggregate 'mean'"),
    ({"corruption_source": "web"}, "unknown `corruption_source` 'web'"),
    ({"epochs": 0}, "`epochs` must be a positive integer"),
])
def test_bad_settings_raise_value_errors_naming_the_value(changes, fragment):
    with pytest.raises(ValueError, match=fragment):
        table1.validate(table1.Table1Config(**changes))


def test_plan_orders_rows_then_seeds_and_adds_ablation_columns():
    runs, aggregates = table1.plan(table1.Table1Config(seeds="1,0", rows="adversarial,augmented,standard",
                                                       mocse_aggregates="margin,true_prob"))
    assert aggregates == ("margin", "true_prob")
    assert [r.name for r in runs[:3]] == ["standard_preact_resnet18_seed1", "standard_mocse_seed1",
                                          "standard_mocse_true_prob_seed1"]
    assert [r.regime for r in runs] == ["standard"] * 6 + ["augmented"] * 6 + ["adversarial"] * 6  # cheapest first
    ablation = table1.train_config(table1.Table1Config(), runs[2], aggregates)
    assert ablation.aggregate == "true_prob" and ablation.arch == "mocse"
    assert table1.train_config(table1.Table1Config(), runs[1], aggregates).aggregate == "margin"


def _flagfile(path):
    values = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("--"):
            name, value = line[2:].split("=", 1)
            values[name] = value
    return values


@pytest.mark.parametrize("regime", table1.REGIMES)
@pytest.mark.parametrize("arch, short", [("preact_resnet18", "preact"), ("mocse", "mocse")])
def test_full_scale_recipe_is_the_configs_flagfile(regime, arch, short):
    """At the default (paper) scale every training is exactly configs/table1_<regime>_<arch>.flags."""
    flagfile = _flagfile(os.path.join(REPO, "configs", f"table1_{regime}_{short}.flags"))
    run = table1.Run(regime, arch, None, 0)
    config = table1.train_config(table1.Table1Config(), run, ("margin",))
    defaults = TrainConfig()
    for name, text in flagfile.items():
        if name == "run_name":
            continue
        value = getattr(config, name)
        expected = type(getattr(defaults, name) if getattr(defaults, name) is not None else value)(text) \
            if not isinstance(value, str) else text
        assert value == pytest.approx(expected) if isinstance(value, float) else value == expected, name
    # Everything the flagfile leaves out is TrainConfig's default (the recipe), except the scale and folders.
    for name in ("momentum", "weight_decay", "weight_decay_mode", "lr_schedule", "nesterov", "bce_weight"):
        assert getattr(config, name) == getattr(defaults, name), name


def test_costs_by_hand():
    config = table1.Table1Config(epochs=3, batch_size=50, adv_steps=4, num_attack_examples=10, attacks="pgd20,fgsm")
    costs = table1.run_costs(config, table1.Run("adversarial", "preact_resnet18", None, 0), num_train=130,
                             num_test=7)
    assert costs["train"] == (3 * 2 * 50, 5, "forward+backward")  # 2 full batches per epoch, 4 PGD steps + 1
    assert costs["validation"] == (21, 1, "forward")
    assert costs["corruption"] == (7 + 7 * 95, 1, "forward")
    assert costs["adversarial"] == (10, 21, "forward+backward")
    assert table1.forward_equivalents(costs) == 300 * 5 * 3 + 21 + 672 + 10 * 21 * 3


def test_a_folder_of_another_table_is_refused(tmp_path):
    config = table1.Table1Config(output_dir=str(tmp_path / "t"), epochs=2)
    table1.claim_folder(config)
    (tmp_path / "t" / "train").mkdir()  # a run begun: the folder now holds this table's work
    table1.claim_folder(table1.Table1Config(output_dir=str(tmp_path / "t"), epochs=2, seeds="5"))  # more seeds: fine
    with pytest.raises(UsageError, match="belongs to another run .*epochs=2 there vs 3 now.*use a new `output_dir`"):
        table1.claim_folder(table1.Table1Config(output_dir=str(tmp_path / "t"), epochs=3))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("not a table")
    with pytest.raises(UsageError, match="already holds files .x.txt. and no record of the run"):
        table1.claim_folder(table1.Table1Config(output_dir=str(tmp_path / "other")))


def test_paper_table_has_20_rows_6_columns_and_only_verified_numbers():
    paper = table1.load_paper_table()
    assert len(paper["rows"]) == 20 and paper["rows"][0] == "clean"
    assert "Mixture of Class Specific Experts" in paper["source"]["title"] and "Kotyan" in paper["source"]["authors"]
    columns = [(r, a) for r in paper["regimes"] for a in paper["architectures"]]
    assert len(columns) == 6
    verified = {("standard", "clean"): (95.18, 94.08), ("adversarial", "clean"): (83.35, 85.09),
                ("augmented", "clean"): (96.13, 96.54), ("standard", "average"): (44.35, 46.28),
                ("adversarial", "average"): (50.63, 52.46), ("augmented", "average"): (45.10, 48.34)}
    for regime, arch in columns:
        values = paper["values"][regime][arch]
        assert set(values) == set(paper["rows"]) | {"average"}
        for row, value in values.items():
            if (regime, row) in verified:
                assert value == verified[(regime, row)][paper["architectures"].index(arch)]
            else:
                assert value is None, (regime, arch, row)  # never estimated


def _write_eval(config, run, clean, corrupted, ece, adversarial):
    models = {run.name: {"clean": clean, "corruptions": {c: {"1": corrupted, "2": corrupted}
                                                        for c in report_lib.display_order()},
                         "calibration": {"clean": ece, "corruptions": {"fog": {"1": ece}}}}}
    report_lib.write_report(report_lib.build_report(models), table1._eval_dir(config, run, "corruption"))
    models = {run.name: {"clean": clean, "adversarial": {"PGD-20 (Linf 8/255)": adversarial}}}
    report_lib.write_report(report_lib.build_report(models), table1._eval_dir(config, run, "adversarial"))


def test_table_cells_and_paired_differences_by_hand(tmp_path):
    config = table1.Table1Config(output_dir=str(tmp_path), seeds="0,1", rows="standard")
    runs, aggregates = table1.plan(config)
    numbers = {  # (arch, seed): clean, corrupted, ECE, PGD
        ("preact_resnet18", 0): (0.80, 0.40, 0.10, 0.00), ("preact_resnet18", 1): (0.84, 0.44, 0.20, 0.02),
        ("mocse", 0): (0.82, 0.45, 0.05, 0.01), ("mocse", 1): (0.83, 0.46, 0.07, 0.01),
    }
    for run in runs:
        _write_eval(config, run, *numbers[(run.arch, run.seed)])
    table = table1.build_table(config, runs, aggregates)
    preact = table["cells"]["standard"]["preact_resnet18"]
    assert preact["clean"]["mean"] == pytest.approx(0.82) and preact["clean"]["std"] == pytest.approx(0.0282843, abs=1e-6)
    assert preact["average"]["mean"] == pytest.approx(0.42)
    assert preact["ece_clean"]["mean"] == pytest.approx(0.15)
    difference = table["differences"]["standard"]["mocse"]
    # clean: +0.02 and -0.01 -> mean 0.005, std sqrt(((0.015)^2 + (0.015)^2) / 1) = 0.0212132
    assert difference["clean"]["mean"] == pytest.approx(0.005) and difference["clean"]["std"] == pytest.approx(
        0.0212132, abs=1e-6)
    # corruptions: +0.05 and +0.02 -> mean 0.035, std 0.0212132
    assert difference["average"]["mean"] == pytest.approx(0.035)
    assert difference["adv: PGD-20 (Linf 8/255)"]["mean"] == pytest.approx(0.0)

    text = table1.markdown(table)
    assert "| Natural Samples | 82.00 ± 2.83 | 95.18 | 82.50 ± 0.71 | 94.08 | +0.50 ± 2.12 (n=2) |" in text
    assert "| Average of 19 Corruptions | 42.00 ± 2.83 | 44.35 | 45.50 ± 0.71 | 46.28 | +3.50 ± 2.12 (n=2) |" in text
    assert "| Gaussian Noise | 42.00 ± 2.83 | – | 45.50 ± 0.71 | – |" in text
    paths = table1.write_table(table, str(tmp_path))
    assert json.load(open(paths["json"]))["cells"]["standard"]["mocse"]["clean"]["n"] == 2
    assert sorted(os.path.basename(p) for p in paths.values()) == [
        "report.json", "table1.csv", "table1.md", "table1_accuracy.png", "table1_difference.png"]
    csv_text = open(paths["csv"]).read()
    assert "standard,mocse,clean,2," in csv_text and ",95.18," in csv_text


def test_autoattack_cost_by_hand():
    # APGD-CE 100 + APGD-T 9 x 100 + FAB-T 9 x 100 + Square 5000 queries / 3; MoCSE adds APGD + APGD-T on margins.
    config = table1.Table1Config(num_attack_examples=10)
    assert config.attacks == "autoattack"
    assert table1.attack_passes(config, has_experts=False) == 100 + 900 + 900 + 1667
    assert table1.attack_passes(config, has_experts=True) == 100 + 900 + 900 + 1667 + 100 + 900
    cheaper = table1.Table1Config(square_queries=300, targets=3)
    assert table1.attack_passes(cheaper, has_experts=False) == 100 + 300 + 300 + 100
