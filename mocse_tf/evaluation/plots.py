"""PNG figures of a report: per-corruption bars across models, accuracy versus severity, and a contact sheet
of sample corrupted images. Matplotlib runs headless (Agg)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mocse_tf import files  # noqa: E402
from mocse_tf.evaluation import report as report_lib  # noqa: E402

BARS_NAME = "accuracy_per_corruption.png"
SEVERITY_NAME = "accuracy_vs_severity.png"
CONTACT_SHEET_NAME = "contact_sheet.png"


def plot_corruption_bars(report, path):
    """Grouped bars: one group per corruption (plus natural samples), one bar per model; mean over severities."""
    names = list(report["models"])
    corruptions = report_lib.ordered_corruptions(list(report["models"].values()))
    labels = ["Natural"] + [report_lib.display_name(c) for c in corruptions]
    figure, axis = plt.subplots(figsize=(max(8.0, 0.55 * len(labels) * max(1, len(names)) ** 0.5 + 2), 4.5))
    width = 0.8 / len(names)
    positions = np.arange(len(labels))
    for index, name in enumerate(names):
        summary = report["summary"][name]
        values = [report["models"][name].get("clean", np.nan)]
        values += [summary["corruption_average"].get(c, np.nan) for c in corruptions]
        axis.bar(positions + (index - (len(names) - 1) / 2) * width, 100 * np.asarray(values, float), width,
                 label=name)
    axis.set_xticks(positions, labels, rotation=60, ha="right")
    axis.set_ylabel("accuracy (%), mean over severities")
    axis.set_ylim(0, 100)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize="small")
    axis.set_title("Accuracy per corruption")
    return files.save_figure(figure, path)


def plot_accuracy_vs_severity(report, path):
    """One line per model: clean accuracy at severity 0, then the mean over corruptions at each severity."""
    figure, axis = plt.subplots(figsize=(6, 4.2))
    for name, model in report["models"].items():
        by_severity = report["summary"][name]["severity_average"]
        xs = ([0] if "clean" in model else []) + [int(s) for s in by_severity]
        ys = ([model["clean"]] if "clean" in model else []) + list(by_severity.values())
        axis.plot(xs, 100 * np.asarray(ys), marker="o", label=name)
    axis.set_xticks(range(0, 6), ["clean", "1", "2", "3", "4", "5"])
    axis.set_xlabel("severity")
    axis.set_ylabel("accuracy (%), mean over corruptions")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    axis.set_title("Accuracy versus severity")
    return files.save_figure(figure, path)


def plot_contact_sheet(samples, path, sample_index=0):
    """Rows: corruptions in display order; columns: clean then each severity (one sample image)."""
    keys = [k for k in samples if k != "clean"]
    corruptions = [c for c in report_lib.display_order() if any(k[0] == c for k in keys)]
    severities = sorted({k[1] for k in keys})
    if not corruptions:
        return None
    columns = (["clean"] if "clean" in samples else []) + severities
    figure, axes = plt.subplots(len(corruptions), len(columns), squeeze=False,
                                figsize=(1.1 * len(columns) + 1.6, 1.1 * len(corruptions) + 0.4))
    for row, corruption in enumerate(corruptions):
        for col, column in enumerate(columns):
            axis = axes[row][col]
            image = samples.get("clean" if column == "clean" else (corruption, column))
            if image is not None and len(image) > sample_index:
                axis.imshow(image[sample_index], interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title("clean" if column == "clean" else f"s{column}", fontsize=8)
            if col == 0:
                axis.set_ylabel(report_lib.display_name(corruption), fontsize=7, rotation=0, ha="right", va="center")
    figure.subplots_adjust(wspace=0.05, hspace=0.05)
    return files.save_figure(figure, path)


def write_plots(report, output_dir, samples=None):
    """Writes the figures that the report's contents allow; returns {kind: path}."""
    paths = {}
    if any(m.get("corruptions") for m in report["models"].values()):
        paths["bars"] = plot_corruption_bars(report, os.path.join(output_dir, BARS_NAME))
        paths["severity"] = plot_accuracy_vs_severity(report, os.path.join(output_dir, SEVERITY_NAME))
    if samples:
        sheet = plot_contact_sheet(samples, os.path.join(output_dir, CONTACT_SHEET_NAME))
        if sheet:
            paths["contact_sheet"] = sheet
    return paths
