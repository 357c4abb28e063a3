"""The one report writer for every table of the project: summary numbers, JSON, CSV and the paper's Table 1.

A report is a plain dict, the same in memory and in `report.json`:

    {"config": {...exact settings...},
     "baseline": "preact" or None,
     "models": {"<name>": {"path": ..., "num_examples": N,
                           "clean": 0.9463,                                   # accuracies in [0, 1]
                           "corruptions": {"gaussian_noise": {"1": 0.81, ...}, ...},
                           "adversarial": {"PGD-20 (Linf 8/255)": 0.52, ...},     # optional section
                           "calibration": {"clean": 0.03,                          # ECE (15 bins), optional
                                           "corruptions": {"gaussian_noise": {"1": 0.12, ...}, ...}}}},
     "summary": {"<name>": {...averages, mCE...}}}                              # recomputed on every write

Any evaluation (corruption, adversarial) fills its own section of a model's entry; `write_report` renders
every section present, so the adversarial evaluation adds rows by adding an "adversarial" dict:

    report = load_report("runs/eval_c/report.json")            # or build_report({...}, config) from scratch
    report = merge_models(report, {"mocse": {"adversarial": {"PGD-20 (Linf 8/255)": 0.51, "worst case": 0.49}}})
    write_report(report, "runs/eval_c")                        # JSON, CSV and Markdown with the extra rows
"""

import datetime
import math
import os

from mocse_tf import files
from mocse_tf.corruptions import BENCHMARK, DISPLAY_GROUPS, canonical_name
from mocse_tf.errors import UsageError

JSON_NAME = "report.json"
CSV_NAME = "accuracy.csv"
MARKDOWN_NAME = "table1.md"
CSV_FIELDS = ("model", "section", "group", "name", "severity", "accuracy", "num_examples")
MISSING = "–"

# Names as printed in the table; anything not listed is title-cased from its tfds name.
_DISPLAY_NAMES = {
    "jpeg_compression": "JPEG Compression",
    "frosted_glass_blur": "Glass Blur",
    "elastic": "Elastic Transform",
    "saturate": "Saturate",
}


def display_name(name):
    return _DISPLAY_NAMES.get(name) or name.replace("_", " ").title()


def display_order():
    return [name for names in DISPLAY_GROUPS.values() for name in names]


def _mean(values):
    values = list(values)
    return sum(values) / len(values) if values else None


# --- numbers ------------------------------------------------------------------------------------------------


def corruption_means(model):
    """{corruption: mean accuracy over its evaluated severities}."""
    return {name: _mean(by_severity.values()) for name, by_severity in model.get("corruptions", {}).items()}


def severity_means(model):
    """{severity (str): mean accuracy over the corruptions evaluated at that severity}."""
    per_severity = {}
    for by_severity in model.get("corruptions", {}).values():
        for severity, accuracy in by_severity.items():
            per_severity.setdefault(str(severity), []).append(accuracy)
    return {severity: _mean(values) for severity, values in sorted(per_severity.items(), key=lambda kv: int(kv[0]))}


def _error_sums(model, corruption, clean_error=0.0):
    by_severity = model["corruptions"][corruption]
    return sum((1.0 - accuracy) - clean_error for accuracy in by_severity.values())


def corruption_errors(model, baseline):
    """Hendrycks & Dietterich's corruption errors of `model` relative to `baseline` (both model entries).

    CE_c = sum_s err_{s,c} / sum_s err^baseline_{s,c};  relative CE_c uses (err_{s,c} - err_clean) in both sums.
    mCE and relative mCE are the means over the benchmark corruptions both models have (the 15 of the paper
    when all were evaluated), as fractions (1.0 = as robust as the baseline). A zero denominator gives None.
    """
    shared = [c for c in BENCHMARK if c in model.get("corruptions", {}) and c in baseline.get("corruptions", {})
              and set(model["corruptions"][c]) == set(baseline["corruptions"][c])]
    ce, relative_ce = {}, {}
    for corruption in shared:
        denominator = _error_sums(baseline, corruption)
        ce[corruption] = _error_sums(model, corruption) / denominator if denominator > 0 else None
        if "clean" in model and "clean" in baseline:
            relative_denominator = _error_sums(baseline, corruption, 1.0 - baseline["clean"])
            relative_ce[corruption] = (_error_sums(model, corruption, 1.0 - model["clean"]) / relative_denominator
                                       if relative_denominator > 0 else None)

    def mean_or_none(values):
        values = list(values.values())
        return None if not values or any(v is None for v in values) else _mean(values)

    return {"corruptions": shared, "ce": ce, "mce": mean_or_none(ce),
            "relative_ce": relative_ce, "relative_mce": mean_or_none(relative_ce)}


def summarize(model, baseline=None):
    """Averages of one model entry (and its mCE against the baseline entry, when given)."""
    means = corruption_means(model)
    benchmark = [c for c in BENCHMARK if c in means]
    summary = {
        "num_corruptions": len(means),
        "average": _mean(means.values()),
        "num_benchmark_corruptions": len(benchmark),
        "benchmark_average": _mean(means[c] for c in benchmark),
        "corruption_average": means,
        "severity_average": severity_means(model),
    }
    calibration = model.get("calibration", {})
    if calibration:
        cells = [ece for by_severity in calibration.get("corruptions", {}).values() for ece in by_severity.values()]
        summary["ece_clean"] = calibration.get("clean")
        summary["ece_corruption_average"] = _mean(cells)
    if baseline is not None:
        errors = corruption_errors(model, baseline)
        summary.update({key: value for key, value in errors.items() if key != "corruptions"})
    return summary


# --- building and validating a report -----------------------------------------------------------------------


def _check_accuracy(where, value):
    if not isinstance(value, (int, float)) or not (0.0 <= value <= 1.0) or math.isnan(value):
        raise UsageError(f"{where}: accuracy must be a number in [0, 1]; got {value!r}")
    return float(value)


def _by_corruption(name, values, what=""):
    """{canonical corruption: {"severity": checked value in [0, 1]}}, severities in order."""
    checked = {}
    for corruption, by_severity in values.items():
        corruption = canonical_name(corruption)
        checked[corruption] = {
            str(int(severity)): _check_accuracy(f"model {name} {corruption} severity {severity}{what}", value)
            for severity, value in sorted(by_severity.items(), key=lambda kv: int(kv[0]))}
    return checked


def normalize_model(name, model):
    """A model entry with canonical corruption names, string severities and checked accuracies."""
    entry = {key: value for key, value in model.items()
             if key not in ("clean", "corruptions", "adversarial", "calibration")}
    if "clean" in model:
        entry["clean"] = _check_accuracy(f"model {name} clean", model["clean"])
    if model.get("corruptions"):
        entry["corruptions"] = _by_corruption(name, model["corruptions"])
    if model.get("adversarial"):
        entry["adversarial"] = {str(label): _check_accuracy(f"model {name} {label}", accuracy)
                                for label, accuracy in model["adversarial"].items()}
    if model.get("calibration"):  # ECE values lie in [0, 1] like accuracies
        calibration = model["calibration"]
        entry["calibration"] = {}
        if calibration.get("clean") is not None:
            entry["calibration"]["clean"] = _check_accuracy(f"model {name} clean ECE", calibration["clean"])
        entry["calibration"]["corruptions"] = _by_corruption(name, calibration.get("corruptions", {}), " ECE")
    return entry


def provenance():
    """The versions and the date a report's config records."""
    import tensorflow as tf

    import mocse_tf

    return {"mocse_tf_version": mocse_tf.__version__, "tensorflow_version": tf.__version__,
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def build_report(models, config=None, baseline=None):
    """A report dict from {model name: entry}; `baseline` names the model that mCE is relative to."""
    if not models:
        raise UsageError("a report needs at least one model")
    models = {str(name): normalize_model(name, entry) for name, entry in models.items()}
    if baseline is not None and baseline not in models:
        raise UsageError(f"`baseline` {baseline!r} is not one of the evaluated models ({', '.join(models)}); "
                         f"name it with `model_names` or leave `baseline` out")
    return {"config": dict(config or {}), "baseline": baseline, "models": models,
            "summary": {name: summarize(entry, models[baseline] if baseline else None)
                        for name, entry in models.items()}}


def merge_models(report, models, config=None):
    """A new report with `models` entries merged into the report's (sections of the same model are combined) and
    `config` (default: the report's own)."""
    merged = {name: dict(entry) for name, entry in report["models"].items()}
    for name, entry in models.items():
        merged.setdefault(name, {}).update(entry)
    return build_report(merged, config or report.get("config"), report.get("baseline"))


# --- files --------------------------------------------------------------------------------------------------


def load_report(path):
    """Reads a report.json back (and recomputes its summary from the raw numbers)."""
    try:
        data = files.read_json(path)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read report {path}: {err}") from None
    if not isinstance(data, dict) or "models" not in data:
        raise UsageError(f"cannot read report {path}: no such file, or no \"models\" in it")
    return build_report(data["models"], data.get("config"), data.get("baseline"))


def csv_rows(report):
    """One row per model x (clean | corruption x severity | attack | ECE cell), values at full precision; the
    "accuracy" column holds the ECE in the rows of section "ece"."""
    group_of = {name: title for title, names in DISPLAY_GROUPS.items() for name in names}
    rows = []
    for model_name, model in report["models"].items():
        calibration = model.get("calibration", {})
        cells = []  # (section, name, severity, value)
        if "clean" in model:
            cells.append(("clean", "natural", "", model["clean"]))
        for corruption in ordered_corruptions([model]):
            cells += [("corruption", corruption, s, v) for s, v in model["corruptions"][corruption].items()]
        cells += [("adversarial", label, "", v) for label, v in model.get("adversarial", {}).items()]
        if "clean" in calibration:
            cells.append(("ece", "natural", "", calibration["clean"]))
        for corruption, by_severity in calibration.get("corruptions", {}).items():
            cells += [("ece", corruption, s, v) for s, v in by_severity.items()]
        rows += [{"model": model_name, "num_examples": model.get("num_examples", ""), "section": section,
                  "group": group_of.get(name, "") if section in ("corruption", "ece") else "", "name": name,
                  "severity": severity, "accuracy": repr(value)} for section, name, severity, value in cells]
    return rows


# --- Markdown: the paper's Table 1 --------------------------------------------------------------------------


def ordered_corruptions(models):
    present = set().union(*(m.get("corruptions", {}).keys() for m in models))
    return [name for name in display_order() if name in present] + sorted(present - set(display_order()))


def _percent(value):
    return MISSING if value is None else f"{100.0 * value:.2f}"


def markdown_table(report):
    """The Table 1 layout: Natural Samples, the corruptions grouped Noise / Blur / Weather / Digital, their
    averages, per-severity averages, mCE against the baseline, and any adversarial rows; one column per model."""
    names = list(report["models"])
    models = [report["models"][n] for n in names]
    summaries = [report["summary"][n] for n in names]
    corruptions = ordered_corruptions(models)
    benchmark_set = set(BENCHMARK)
    rows = []  # (group cell, row label, [cells])

    def add_section(title, labelled_values):
        """The rows of one section, [(row label, value per model)]; its first row shows the section's title."""
        for index, (label, values) in enumerate(labelled_values):
            rows.append(("" if index else title, label, [_percent(v) for v in values]))

    def corruption_row(corruption, label):
        return label, [s["corruption_average"].get(corruption) for s in summaries]

    if any("clean" in m for m in models):
        add_section("", [("Natural Samples", [m.get("clean") for m in models])])
    for title, group_names in DISPLAY_GROUPS.items():
        add_section(f"**{title}**", [corruption_row(c, display_name(c) + ("" if c in benchmark_set else " †"))
                                     for c in group_names if c in corruptions])
    add_section("", [corruption_row(c, display_name(c)) for c in corruptions if c not in display_order()])
    if corruptions:
        add_section("", [(f"**Average of {len(corruptions)} Corruptions**", [s["average"] for s in summaries])])
        num_benchmark = sum(c in benchmark_set for c in corruptions)
        summary_rows = []
        if num_benchmark and num_benchmark != len(corruptions):
            of = "15 benchmark corruptions" if num_benchmark == len(BENCHMARK) \
                else f"{num_benchmark} benchmark corruptions (of {len(BENCHMARK)})"
            summary_rows.append((f"Average of {of}", [s["benchmark_average"] for s in summaries]))
        severities = sorted({sev for s in summaries for sev in s["severity_average"]}, key=int)
        for severity in severities:
            summary_rows.append((f"Severity {severity} (average of corruptions)",
                                 [s["severity_average"].get(severity) for s in summaries]))
        if report.get("baseline"):
            baseline = report["baseline"]
            summary_rows.append((f"mCE vs {baseline} (lower is better)", [s.get("mce") for s in summaries]))
            summary_rows.append((f"Relative mCE vs {baseline} (lower is better)",
                                 [s.get("relative_mce") for s in summaries]))
        add_section("**Summary**", summary_rows)
    attack_labels = []
    for model in models:
        attack_labels += [label for label in model.get("adversarial", {}) if label not in attack_labels]
    add_section("**Adversarial**", [(label, [m.get("adversarial", {}).get(label) for m in models])
                                    for label in attack_labels])
    if any(m.get("calibration") for m in models):
        add_section("**Calibration**", [
            ("ECE, natural samples (15 bins; lower is better)", [s.get("ece_clean") for s in summaries]),
            ("ECE, average over corruptions and severities", [s.get("ece_corruption_average") for s in summaries])])

    header = "| | | " + " | ".join(names) + " |"
    rule = "|---|---|" + "---:|" * len(names)
    lines = [header, rule] + [f"| {group} | {label} | " + " | ".join(cells) + " |" for group, label, cells in rows]
    return "\n".join(lines)


def markdown_document(report):
    """The table with a caption that states what was measured, and the footnotes it needs."""
    config = report.get("config", {})
    caption = ["Accuracy (%) of each model (columns)."]
    if config.get("source"):
        caption.append(f"Corrupted data: {config['source']}"
                       + (f" ({config['source_detail']})" if config.get("source_detail") else "") + ".")
    if config.get("dataset"):
        caption.append(f"Clean data: {config['dataset']}.")
    sizes = sorted({m.get("num_examples") for m in report["models"].values() if m.get("num_examples")})
    if sizes:
        caption.append(f"{', '.join(map(str, sizes))} images per corruption and severity.")
    lines = [" ".join(caption), "", markdown_table(report), ""]
    if any(c not in BENCHMARK for m in report["models"].values() for c in m.get("corruptions", {})):
        lines.append("† one of the 4 extra corruptions (meant for validation); the benchmark average and mCE "
                     "use the 15 benchmark corruptions only.")
    if report.get("baseline"):
        lines.append(f"mCE: mean over benchmark corruptions of sum_s err / sum_s err of {report['baseline']} "
                     f"(Hendrycks & Dietterich, 2019); relative mCE uses (err - clean err) in both sums. "
                     f"100.00 = as robust as the baseline.")
        if any(s.get("relative_mce") is None for s in report["summary"].values()):
            lines.append(f"{MISSING} for relative mCE: undefined, because for some corruption the baseline's "
                         f"corrupted error does not exceed its clean error.")
    if config.get("adversarial", {}).get("footnote"):  # what the adversarial rows measured (adversarial_eval)
        lines.append(config["adversarial"]["footnote"])
    return "\n".join(lines).rstrip() + "\n"


def write_report(report, output_dir):
    """Writes report.json, accuracy.csv and table1.md into output_dir; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    report = build_report(report["models"], report.get("config"), report.get("baseline"))
    paths = {"json": os.path.join(output_dir, JSON_NAME), "csv": os.path.join(output_dir, CSV_NAME),
             "markdown": os.path.join(output_dir, MARKDOWN_NAME)}
    files.write_json(paths["json"], report, sort_keys=False, allow_nan=False)
    files.write_csv(paths["csv"], CSV_FIELDS, csv_rows(report))
    files.write_text(paths["markdown"], markdown_document(report))
    return paths
