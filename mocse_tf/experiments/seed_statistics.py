"""Numbers over repeated seeds: mean and sample standard deviation of a cell, and the paired difference of two
models trained with the same seeds (each seed fixes data order, augmentation and initialisation for both)."""

import math


def mean_std(values):
    """{"mean", "std", "n", "values"} of a list of numbers; std is the sample standard deviation (n - 1 in the
    denominator, as numpy.std(ddof=1)), None for fewer than two values; mean None for none."""
    values = [float(v) for v in values if v is not None]
    n = len(values)
    if n == 0:
        return {"mean": None, "std": None, "n": 0, "values": []}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n, "values": values}


# Two-sided 95% critical values of Student's t for 1..30 degrees of freedom (beyond: the normal 1.96).
T_95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_critical_95(degrees_of_freedom):
    return T_95[degrees_of_freedom - 1] if degrees_of_freedom <= len(T_95) else 1.96


def paired_difference(first, second):
    """Statistics of first[seed] - second[seed] over the seeds both {seed: value} dicts hold (None values skipped).

    Adds "seeds" (the paired seeds), "min" and "max" of the differences, "ci95" (half-width of the 95% Student-t
    interval of the mean difference, t_{n-1} std / sqrt(n)) and "separated": True when that interval excludes
    zero, i.e. the difference is larger than the seed-to-seed spread of the paired differences can explain
    (None for a single seed, which cannot tell an effect from seed noise).
    """
    seeds = sorted(s for s in first if s in second and first[s] is not None and second[s] is not None)
    differences = [float(first[s]) - float(second[s]) for s in seeds]
    stats = mean_std(differences)
    stats["seeds"] = seeds
    stats["min"] = min(differences) if differences else None
    stats["max"] = max(differences) if differences else None
    if stats["n"] >= 2:
        stats["ci95"] = t_critical_95(stats["n"] - 1) * stats["std"] / math.sqrt(stats["n"])
        stats["separated"] = abs(stats["mean"]) > stats["ci95"]
    else:
        stats["ci95"] = None
        stats["separated"] = None
    return stats


def format_mean_std(stats, scale=100.0, digits=2, signed=False):
    """'94.08 ± 0.12' (values scaled, e.g. accuracies in [0, 1] to percent; signed: '+1.10 ± 0.12'), '94.08' for
    one seed, '–' for none."""
    if stats is None or stats.get("mean") is None:
        return "–"
    text = f"{scale * stats['mean']:{'+' if signed else ''}.{digits}f}"
    if stats.get("std") is not None:
        text += f" ± {scale * stats['std']:.{digits}f}"
    return text
