"""PNG figures of a Table 1 run: clean and corruption accuracy per regime with their spread over seeds and the
paper's values, and the paired MoCSE - PreAct-ResNet-18 difference per corruption. Matplotlib runs headless."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mocse_tf import files  # noqa: E402

ACCURACY_PLOT = "table1_accuracy.png"
DIFFERENCE_PLOT = "table1_difference.png"


def _percent(stats, key, missing=np.nan):
    """stats[key] in percent, or `missing` where there is none (no mean: NaN, no bar; no std: no error bar)."""
    value = stats.get(key)
    return missing if value is None else 100.0 * value


def plot_accuracy(table, path):
    """Per regime: bars of clean / corruption-average accuracy (mean, error bar = std over seeds) per model,
    with the paper's value as a black marker where it is known."""
    regimes = list(table["cells"])
    rows = [("clean", "clean"), ("average", "19 corruptions")]
    models = table["models"]
    figure, axes = plt.subplots(1, len(regimes), figsize=(4.2 * len(regimes), 3.6), squeeze=False)
    width = 0.8 / len(models)
    for axis, regime in zip(axes[0], regimes):
        x = np.arange(len(rows))
        for index, model in enumerate(models):
            stats = [table["cells"][regime][model][row] for row, _ in rows]
            means = [_percent(s, "mean") for s in stats]
            errors = [_percent(s, "std", 0.0) for s in stats]
            positions = x + (index - (len(models) - 1) / 2) * width
            axis.bar(positions, means, width, yerr=errors, capsize=3, label=model)
            paper = [table["paper"]["values"].get(regime, {}).get(model, {}).get(row) for row, _ in rows]
            known = [(p, v) for p, v in zip(positions, paper) if v is not None]
            if known:
                axis.scatter(*zip(*known), color="black", marker="_", s=200, zorder=3,
                             label="paper" if index == 0 else None)
        axis.set_xticks(x, [title for _, title in rows])
        axis.set_title(regime)
        axis.set_ylim(0, 100)
        axis.set_ylabel("accuracy (%)")
    axes[0][0].legend(fontsize=7)
    return files.save_figure(figure, path)


def plot_difference(table, path):
    """Per regime: MoCSE - PreAct-ResNet-18 (percentage points) on clean data and every corruption, mean over
    paired seeds with the std of the paired differences as error bars."""
    regimes = list(table["cells"])
    rows = [r for r in table["rows"] if r not in ("benchmark_average", "ece_clean", "ece_corruption_average")
            and not r.startswith("adv: ")]
    figure, axis = plt.subplots(figsize=(max(8, 0.45 * len(rows) * len(regimes) / 1.5), 4))
    width = 0.8 / max(1, len(regimes))
    x = np.arange(len(rows))
    for index, regime in enumerate(regimes):
        stats = [table["differences"][regime]["mocse"][row] for row in rows]
        means = [_percent(s, "mean") for s in stats]
        errors = [_percent(s, "std", 0.0) for s in stats]
        axis.bar(x + (index - (len(regimes) - 1) / 2) * width, means, width, yerr=errors, capsize=2, label=regime)
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(x, rows, rotation=70, fontsize=7)
    axis.set_ylabel("MoCSE − PreAct-ResNet-18 (points)")
    axis.legend(fontsize=7)
    return files.save_figure(figure, path)


def write_plots(table, output_dir):
    return {"accuracy_plot": plot_accuracy(table, os.path.join(output_dir, ACCURACY_PLOT)),
            "difference_plot": plot_difference(table, os.path.join(output_dir, DIFFERENCE_PLOT))}
