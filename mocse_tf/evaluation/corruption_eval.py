"""Clean accuracy and accuracy under every corruption x severity, for one or more models at once.

Models are evaluated side by side: each batch is read (or corrupted) once and fed to every model, which is what
makes on-the-fly generation affordable for several models.
"""

import datetime
import os
import time

import numpy as np
from absl import logging

from mocse_tf import corruptions
from mocse_tf.errors import UsageError
from mocse_tf.evaluation import accuracy as accuracy_lib
from mocse_tf.evaluation import calibration
from mocse_tf.evaluation import sources
from mocse_tf.progress import Progress

CORRUPTION_SETS = {"all": corruptions.ALL, "benchmark": corruptions.BENCHMARK, "extra": corruptions.EXTRA}


def parse_corruptions(spec):
    """'all' | 'benchmark' | 'extra' | 'a,b,...' (or a list of names) -> canonical names in the official order
    of the sets, or in the order given."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [item.strip() for item in items if item and item.strip()]
    if not items:
        raise UsageError(f"no corruption named in {spec!r}; use all, benchmark, extra or names such as "
                         f"gaussian_noise,fog")
    names = []
    for item in items:
        for name in CORRUPTION_SETS.get(item.lower(), None) or (corruptions.canonical_name(item),):
            if name not in names:
                names.append(name)
    return tuple(names)


def parse_severities(spec):
    """'1,2,3,4,5' (or a list of ints) -> a sorted tuple of distinct ints in 1..5."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    severities = set()
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            value = int(str(item).strip())
        except ValueError:
            raise UsageError(f"severity {item!r} is not an integer; use values from 1 to 5, e.g. "
                             f"--severities=1,3,5") from None
        if value not in corruptions.SEVERITIES:
            raise UsageError(f"severity {value} is outside 1..5; use values from 1 to 5, e.g. --severities=1,3,5")
        severities.add(value)
    if not severities:
        raise UsageError(f"no severity in {spec!r}; use values from 1 to 5, e.g. --severities=1,2,3,4,5")
    return tuple(sorted(severities))


def check_class_counts(classifiers, num_classes, data_name):
    """Every model must predict exactly the data set's classes."""
    for model_name, classifier in classifiers.items():
        if classifier.num_classes != num_classes:
            raise UsageError(f"model {model_name} ({classifier.path}) predicts {classifier.num_classes} classes but "
                             f"{data_name} has {num_classes}; evaluate it on the data set it was trained on "
                             f"(--dataset)")


def progress_bar(target):
    """Images done, elapsed and remaining: live on a terminal, a plain line a minute in a file or a pipe."""
    return Progress(target, unit="image")


def check_source_classes(source, num_classes, dataset):
    """The corrupted labels must belong to the clean data set's classes (tfds and make_c sets say how many)."""
    if isinstance(source, sources.GeneratedSource):
        return
    if isinstance(source, sources.FolderSource) and not source.manifest:
        exact, source_classes = False, source.num_classes  # the released layout only tells the largest label
    else:
        exact, source_classes = True, source.num_classes
    if source_classes > num_classes or (exact and source_classes != num_classes):
        raise UsageError(f"the corrupted data (--source={source.name}) has {source_classes} classes but "
                         f"--dataset={dataset} has {num_classes}; pass the --dataset the corrupted set was made from")


class SampleCollector:
    """Keeps the first few images of each evaluated set, for the contact sheet."""

    def __init__(self, count):
        self.count = count
        self.images = {}

    def watch(self, key, on_batch):
        def collect(images, batch_size):
            if key not in self.images and self.count:
                self.images[key] = np.asarray(images[: self.count])
            on_batch(images, batch_size)

        return collect


def evaluate(classifiers, source, corruption_names, severities, *, clean=None, batch_size=500, num_samples=4,
             show_progress=True):
    """Evaluates {model name: mocse_tf.loading.Classifier} on the clean set and on every (corruption, severity) of `source`.

    Args:
      classifiers: {name: mocse_tf.loading.Classifier}, in column order.
      source: a TfdsSource, FolderSource or GeneratedSource.
      clean: (images uint8 [N, 32, 32, 3], labels [N]) for clean accuracy, or None.
    Returns:
      ({name: {"path", "num_examples", "clean", "corruptions": {corruption: {"severity": accuracy}},
               "calibration": {"clean": ECE, "corruptions": {corruption: {"severity": ECE}}}}},
       {"clean" or (corruption, severity): first `num_samples` images}).
    """
    names = list(classifiers)
    # One forward pass per batch gives both the top-1 count and the calibration bins (ECE, 15 bins).
    counters = [calibration.CalibratedCounter(classifiers[n]) for n in names]
    results = {n: {"path": classifiers[n].path, "corruptions": {}, "calibration": {"corruptions": {}}}
               for n in names}
    samples = SampleCollector(num_samples)
    per_task = source.num_examples or 10_000
    target = (len(clean[0]) if clean is not None else 0) + per_task * len(corruption_names) * len(severities)
    bar = progress_bar(target) if show_progress else None
    seen = [0]

    def advance(images, count):
        seen[0] += count
        if bar is not None:
            bar.update(seen[0])

    def run(key, dataset, label):
        started = time.perf_counter()
        for counter in counters:
            counter.reset()
        correct, total = accuracy_lib.count_correct(counters, dataset, samples.watch(key, advance))
        if total == 0:
            raise UsageError(f"{label}: the data set is empty; check --num_examples and the source")
        accuracies = [c / total for c in correct]
        logging.info("%s: %s (%d images, %.1f s)", label,
                     ", ".join(f"{n} {100 * a:.2f}%" for n, a in zip(names, accuracies)), total,
                     time.perf_counter() - started)
        return accuracies, [counter.ece() for counter in counters], total

    if clean is not None:
        accuracies, eces, total = run("clean", sources.clean_dataset(clean[0], clean[1], batch_size), "clean")
        for name, value, ece in zip(names, accuracies, eces):
            results[name]["clean"] = value
            results[name]["calibration"]["clean"] = ece
            results[name]["num_clean_examples"] = total
    for corruption in corruption_names:
        for severity in severities:
            dataset = source.dataset(corruption, severity, batch_size)
            accuracies, eces, total = run((corruption, severity), dataset, f"{corruption} severity {severity}")
            for name, value, ece in zip(names, accuracies, eces):
                results[name]["corruptions"].setdefault(corruption, {})[str(severity)] = value
                results[name]["calibration"]["corruptions"].setdefault(corruption, {})[str(severity)] = ece
                results[name]["num_examples"] = total
    if bar is not None and seen[0] < target:  # fewer images than announced (a short tfds set): close the bar
        bar.update(seen[0], finalize=True)
    return results, samples.images


# --- the bin/eval_c run -------------------------------------------------------------------------------------


def default_model_names(paths):
    """Column names from model paths: the run folder for saved_models/<run>/<version>, the file stem for .keras."""
    names = []
    for path in paths:
        parts = [p for p in os.path.normpath(os.path.abspath(path)).split(os.sep) if p]
        stem = parts[-1] if parts else path
        if stem.endswith(".keras"):
            stem = stem[: -len(".keras")]
            if stem == "model" and len(parts) > 1:
                stem = parts[-2]
        elif stem.isdigit() and len(parts) > 1:
            stem = parts[-2]
        name, suffix = stem, 2
        while name in names:
            name, suffix = f"{stem}_{suffix}", suffix + 1
        names.append(name)
    return names


def _model_names(paths, names):
    if not paths:
        raise UsageError("no model to evaluate; pass --model PATH (a SavedModel folder or a .keras file), "
                         "once per model")
    if not names:
        return default_model_names(paths)
    if len(names) != len(paths):
        raise UsageError(f"{len(names)} --model_name for {len(paths)} --model; give one name per model, in the "
                         f"same order, or none")
    if len(set(names)) != len(names):
        raise UsageError(f"--model_name values must be distinct; got {', '.join(names)}")
    return list(names)


def run_eval_c(*, models, model_names=None, source="tfds", c_dir=None, data_dir=None, dataset=None, local_dir=None,
               corruptions_spec="all", severities_spec="1,2,3,4,5", num_examples=0, batch_size=500, baseline=None,
               output_dir="runs/eval_c", seed=0, command=None, show_progress=True):
    """Everything `bin/eval_c` does: checks the arguments, loads models and data, evaluates, writes the report
    (JSON, CSV, Markdown) and the plots into output_dir. Returns (report dict, {kind: path}, Markdown text)."""
    import tensorflow as tf

    import mocse_tf
    from mocse_tf import loading
    from mocse_tf.evaluation import plots, report as report_lib

    corruption_names = parse_corruptions(corruptions_spec)
    severities = parse_severities(severities_spec)
    if source not in sources.SOURCES:
        raise UsageError(f"unknown --source {source!r}; choose tfds (official CIFAR-10-C through tfds), folder "
                         f"(a CIFAR-10-C layout folder, --c_dir) or generate (on the fly from --dataset)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise UsageError(f"--batch_size must be a positive integer; got {batch_size!r}")
    if num_examples is None or num_examples < 0:
        raise UsageError(f"--num_examples must be 0 (all) or a positive number; got {num_examples!r}")
    names = _model_names(list(models), list(model_names or []))
    if baseline is not None and baseline not in names:
        raise UsageError(f"--baseline {baseline!r} is not one of the model names ({', '.join(names)}); name the "
                         f"models with --model_name")
    resolved = [loading.resolve_model_path(path) for path in models]  # every path checked before any loading

    folder = sources.FolderSource(c_dir, corruption_names, num_examples) if source == "folder" else None
    if source == "tfds":
        sources.TfdsSource(data_dir).check_available(corruption_names, severities)
    clean_seed, num_clean = seed, num_examples or None
    manifest = folder.manifest if folder is not None else None
    if dataset is None:
        dataset = (manifest or {}).get("dataset") or "cifar10"
    if manifest and manifest.get("dataset") == dataset:
        # bin/make_c output: clean accuracy on the very images that were corrupted.
        local_dir = local_dir or manifest.get("local_dir")
        clean_seed = manifest.get("seed", seed)
        num_clean = min(num_examples or folder.per_severity, folder.per_severity)
    from mocse_tf.data import load_arrays

    clean = load_arrays(dataset, "test", data_dir=data_dir, local_dir=local_dir, seed=clean_seed,
                        num_examples=num_clean)
    classifiers = {name: loading.load_model(path) for name, path in zip(names, resolved)}
    check_class_counts(classifiers, clean.num_classes, f"--dataset={dataset}")
    if source == "tfds":
        corrupted = sources.TfdsSource(data_dir, num_examples or None)
    elif source == "folder":
        corrupted = folder
    else:
        corrupted = sources.GeneratedSource(clean.images, clean.labels, seed, dataset)
    check_source_classes(corrupted, clean.num_classes, dataset)

    results, samples = evaluate(classifiers, corrupted, corruption_names, severities,
                                clean=(clean.images, clean.labels), batch_size=batch_size, show_progress=show_progress)
    config = {
        "command": command,
        "models": dict(zip(names, [os.path.abspath(p) for p in resolved])),
        "dataset": dataset, "local_dir": local_dir, "data_dir": data_dir,
        "num_clean_examples": int(len(clean.images)),
        "corruptions": list(corruption_names), "severities": list(severities),
        "num_examples": num_examples, "batch_size": batch_size, "baseline": baseline, "seed": seed,
        "seed_chunk": sources.SEED_CHUNK if source == "generate" else None,
        "mocse_tf_version": mocse_tf.__version__, "tensorflow_version": tf.__version__,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        **corrupted.describe(),
    }
    report = report_lib.build_report(results, config, baseline)
    paths = report_lib.write_report(report, output_dir)
    paths.update(plots.write_plots(report, output_dir, samples))
    return report, paths, report_lib.markdown_document(report)
