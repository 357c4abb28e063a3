"""The report writer: hand-computed averages and mCE, the Table 1 row order, and JSON / CSV round trips."""

import json

import pytest

from mocse_tf import corruptions
from mocse_tf.errors import UsageError
from mocse_tf.evaluation import report
from tests.evaluation.report_csv import read_csv

# Two models, two benchmark corruptions and one extra, severities 1 and 2; B is the mCE baseline.
MODELS = {
    "A": {"clean": 0.90, "num_examples": 100,
          "corruptions": {"gaussian_noise": {1: 0.80, 2: 0.60}, "defocus_blur": {1: 0.70, 2: 0.50},
                          "saturate": {1: 0.85, 2: 0.75}}},
    "B": {"clean": 0.80, "num_examples": 100,
          "corruptions": {"gaussian_noise": {1: 0.60, 2: 0.40}, "defocus_blur": {1: 0.60, 2: 0.20},
                          "saturate": {1: 0.70, 2: 0.50}}},
}


def test_averages_and_mce_match_hand_computation():
    built = report.build_report(MODELS, baseline="B")
    a = built["summary"]["A"]
    # Per-corruption means: gaussian_noise 0.70, defocus_blur 0.60, saturate 0.80.
    assert a["corruption_average"] == pytest.approx({"gaussian_noise": 0.70, "defocus_blur": 0.60, "saturate": 0.80})
    assert a["average"] == pytest.approx(0.70)  # (0.70 + 0.60 + 0.80) / 3
    assert a["benchmark_average"] == pytest.approx(0.65)  # saturate is an extra corruption
    assert a["num_corruptions"] == 3 and a["num_benchmark_corruptions"] == 2
    assert a["severity_average"] == pytest.approx({"1": (0.80 + 0.70 + 0.85) / 3, "2": (0.60 + 0.50 + 0.75) / 3})
    # CE = sum of errors / baseline's sum: gaussian (0.2 + 0.4) / (0.4 + 0.6), defocus (0.3 + 0.5) / (0.4 + 0.8).
    assert a["ce"] == pytest.approx({"gaussian_noise": 0.6, "defocus_blur": 0.8 / 1.2})
    assert a["mce"] == pytest.approx((0.6 + 0.8 / 1.2) / 2)
    # Relative CE subtracts the clean error (A 0.1, B 0.2): (0.1 + 0.3) / (0.2 + 0.4), (0.2 + 0.4) / (0.2 + 0.6).
    assert a["relative_ce"] == pytest.approx({"gaussian_noise": 0.4 / 0.6, "defocus_blur": 0.75})
    assert a["relative_mce"] == pytest.approx((0.4 / 0.6 + 0.75) / 2)
    b = built["summary"]["B"]
    assert b["mce"] == pytest.approx(1.0) and b["relative_mce"] == pytest.approx(1.0)
    assert "mce" not in report.build_report(MODELS)["summary"]["A"]  # no baseline, no mCE


def test_relative_mce_is_undefined_when_the_baseline_loses_nothing():
    models = {"A": {"clean": 0.9, "corruptions": {"fog": {1: 0.8}}},
              "B": {"clean": 0.8, "corruptions": {"fog": {1: 0.8}}}}
    summary = report.build_report(models, baseline="B")["summary"]["A"]
    assert summary["mce"] == pytest.approx(1.0) and summary["relative_mce"] is None


def _table_rows(markdown):
    """[(group cell, label, [cells])] of the table in a Markdown document."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("| ") or line.startswith("|  |") or line.startswith("| **"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append((cells[0], cells[1], cells[2:]))
    return rows[1:]  # drop the header


def full_models():
    """Two models with every corruption at every severity: A = 0.5 + 0.01 * index, B = 0.4 everywhere."""
    def entry(value, clean):
        return {"clean": clean, "num_examples": 10,
                "corruptions": {c: {s: value(i) for s in range(1, 6)} for i, c in enumerate(corruptions.ALL)}}

    models = {"A": entry(lambda i: 0.5 + 0.01 * i, 0.95), "B": entry(lambda i: 0.4, 0.9)}
    models["A"]["adversarial"] = {"PGD-20 (Linf 8/255)": 0.45, "APGD-CE": 0.43}
    models["B"]["adversarial"] = {"PGD-20 (Linf 8/255)": 0.0}
    return models


def test_markdown_has_the_table1_rows_in_order():
    markdown = report.markdown_document(report.build_report(full_models(), {"source": "folder"}, baseline="B"))
    rows = _table_rows(markdown)
    labels = [label for _, label, _ in rows]
    expected_corruptions = [report.display_name(c) + ("" if c in corruptions.BENCHMARK else " †")
                            for names in corruptions.DISPLAY_GROUPS.values() for c in names]
    assert labels[0] == "Natural Samples"
    assert labels[1:20] == expected_corruptions
    assert labels[20:] == [
        "**Average of 19 Corruptions**", "Average of 15 benchmark corruptions",
        *[f"Severity {s} (average of corruptions)" for s in range(1, 6)],
        "mCE vs B (lower is better)", "Relative mCE vs B (lower is better)",
        "PGD-20 (Linf 8/255)", "APGD-CE"]
    # Group titles sit on the first row of each group only.
    groups = [group for group, _, _ in rows]
    assert [g for g in groups if g] == ["**Noise**", "**Blur**", "**Weather**", "**Digital**", "**Summary**",
                                        "**Adversarial**"]
    first_rows = {group: labels[index] for index, group in enumerate(groups) if group}
    assert first_rows["**Noise**"] == "Gaussian Noise" and first_rows["**Digital**"] == "Brightness"
    # Numbers: accuracies in percent with two decimals; A's average of 0.5 .. 0.68 is 59.00; B has no APGD row.
    cells = {label: values for _, label, values in rows}
    assert cells["Natural Samples"] == ["95.00", "90.00"]
    assert cells["Gaussian Noise"] == ["50.00", "40.00"]
    assert cells["Saturate †"] == ["68.00", "40.00"]
    assert cells["**Average of 19 Corruptions**"] == ["59.00", "40.00"]
    assert cells["Average of 15 benchmark corruptions"] == ["57.00", "40.00"]
    assert cells["mCE vs B (lower is better)"][1] == "100.00"
    assert cells["APGD-CE"] == ["43.00", report.MISSING]
    assert "† one of the 4 extra corruptions" in markdown


def test_an_adversarial_only_report_renders_only_its_rows():
    models = {"m": {"clean": 0.8, "adversarial": {"PGD-20 (Linf 8/255)": 0.4, "worst case": 0.38}}}
    rows = _table_rows(report.markdown_table(report.build_report(models)))
    assert [(g, label) for g, label, _ in rows] == [("", "Natural Samples"), ("**Adversarial**", "PGD-20 (Linf 8/255)"),
                                                    ("", "worst case")]


def test_json_and_csv_round_trip_every_number(tmp_path):
    models = full_models()
    models["A"]["corruptions"]["fog"][3] = 1 / 3  # a number that needs full precision
    built = report.build_report(models, {"source": "generate", "seed": 4}, baseline="B")
    paths = report.write_report(built, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accuracy.csv", "report.json", "table1.md"]

    loaded = report.load_report(paths["json"])
    assert loaded == json.loads(json.dumps(built))
    assert loaded["config"] == {"source": "generate", "seed": 4} and loaded["baseline"] == "B"
    assert loaded["models"]["A"]["corruptions"]["fog"]["3"] == 1 / 3

    from_csv = read_csv(paths["csv"])
    for name in ("A", "B"):
        assert from_csv[name]["clean"] == built["models"][name]["clean"]
        assert from_csv[name]["corruptions"] == built["models"][name]["corruptions"]  # exact, not approximate
        assert from_csv[name]["adversarial"] == built["models"][name]["adversarial"]
    with open(paths["csv"]) as handle:
        assert sum(1 for _ in handle) == 1 + 2 * (1 + 19 * 5) + 3  # header, clean + cells per model, 3 attacks


def test_merging_an_adversarial_section_keeps_the_corruption_numbers(tmp_path):
    built = report.build_report(MODELS, baseline="B")
    merged = report.merge_models(built, {"A": {"adversarial": {"PGD-20 (Linf 8/255)": 0.3}}})
    assert merged["models"]["A"]["corruptions"] == built["models"]["A"]["corruptions"]
    assert merged["models"]["A"]["adversarial"] == {"PGD-20 (Linf 8/255)": 0.3}
    assert merged["summary"]["A"]["mce"] == pytest.approx(built["summary"]["A"]["mce"])


@pytest.mark.parametrize("models, baseline, fragment", [
    ({"A": {"clean": 1.5}}, None, "accuracy must be a number in [0, 1]; got 1.5"),
    ({"A": {"corruptions": {"fogg": {1: 0.5}}}}, None, "unknown corruption 'fogg'"),
    ({"A": {"clean": 0.5}}, "B", "`baseline` 'B' is not one of the evaluated models (A)"),
    ({}, None, "at least one model"),
])
def test_bad_report_input_raises_a_usage_error(models, baseline, fragment):
    with pytest.raises(UsageError, match=None) as caught:
        report.build_report(models, baseline=baseline)
    assert fragment in str(caught.value)


def test_aliases_are_stored_under_the_tfds_name():
    built = report.build_report({"A": {"corruptions": {"glass_blur": {"1": 0.5}, "elastic_transform": {1: 0.4}}}})
    assert list(built["models"]["A"]["corruptions"]) == ["frosted_glass_blur", "elastic"]
