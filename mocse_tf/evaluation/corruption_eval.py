"""Clean accuracy and accuracy under every corruption x severity, for one or more models at once.

Models are evaluated side by side: each batch is read (or corrupted) once and fed to every model, which is what
makes on-the-fly generation affordable for several models.
"""

import os
import time

import numpy as np
from absl import logging

from mocse_tf import ownership
from mocse_tf.data import load_arrays, make_pipeline
from mocse_tf.errors import UsageError, describe_error
from mocse_tf.evaluation import accuracy as accuracy_lib
from mocse_tf.evaluation import config as eval_config
from mocse_tf.evaluation import calibration
from mocse_tf.evaluation import sources
from mocse_tf.progress import Progress


def check_source_classes(source, num_classes, dataset):
    """The corrupted labels must belong to the clean data set's classes (tfds and make_c sets say how many)."""
    if isinstance(source, sources.GeneratedSource):
        return
    if isinstance(source, sources.FolderSource) and not source.manifest:
        exact, source_classes = False, source.num_classes  # the released layout only tells the largest label
    else:
        exact, source_classes = True, source.num_classes
    if source_classes > num_classes or (exact and source_classes != num_classes):
        raise UsageError(f"the corrupted data (`source`={source.name}) has {source_classes} classes but "
                         f"`dataset`={dataset} has {num_classes}; pass the `dataset` the corrupted set was made from")


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
    samples = {}  # the first images of each evaluated set, for the contact sheet
    per_task = source.num_examples or 10_000
    target = (len(clean[0]) if clean is not None else 0) + per_task * len(corruption_names) * len(severities)
    bar = Progress(target, unit="image") if show_progress else None

    def run(key, dataset, label):
        def on_batch(images, count):
            if key not in samples and num_samples:
                samples[key] = np.asarray(images[:num_samples])
            if bar is not None:
                bar.add(count)

        started = time.perf_counter()
        for counter in counters:
            counter.reset()
        correct, total = accuracy_lib.count_correct(counters, dataset, on_batch)
        if total == 0:
            raise UsageError(f"{label}: the data set is empty; check `num_examples` and the source")
        accuracies = [c / total for c in correct]
        logging.info("%s: %s (%d images, %.1f s)", label,
                     ", ".join(f"{n} {100 * a:.2f}%" for n, a in zip(names, accuracies)), total,
                     time.perf_counter() - started)
        return accuracies, [counter.ece() for counter in counters], total

    if clean is not None:
        batches = make_pipeline(clean[0], clean[1], batch_size, training=False, cache=False)
        accuracies, eces, total = run("clean", batches, "clean")
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
    if bar is not None:  # closes the bar also after fewer images than announced (a short tfds set)
        bar.finish()
    return results, samples


# --- the bin/eval_c run -------------------------------------------------------------------------------------


def run_eval_c(config, *, command=None, show_progress=True):
    """Everything `bin/eval_c` does with an EvalConfig: checks it, loads models and data, evaluates, writes the
    report (JSON, CSV, Markdown) and the plots into config.output_dir. Returns (report dict, {kind: path}, Markdown
    text)."""
    from mocse_tf import loading
    from mocse_tf.evaluation import plots, report as report_lib

    config = config.checked("eval_c")
    corruption_names, severities, names = config.corruption_names(), config.severity_values(), config.column_names()
    num_examples, source, dataset, local_dir = config.num_examples, config.source, config.dataset, config.local_dir
    resolved = [loading.resolve_model_path(path) for path in config.models]  # every path checked before any loading
    owner = eval_config.output_owner(config, "eval_c", resolved)
    ownership.check(config.output_dir, owner, eval_config.OUTPUT_WAY_OUT, config.overwrite)  # before any work

    corrupted = None  # for `source`=generate: made from the clean images below
    if source == "folder":
        corrupted = sources.FolderSource(config.c_dir, corruption_names, num_examples)
    elif source == "tfds":
        corrupted = sources.TfdsSource(config.data_dir, num_examples or None)
        corrupted.check_available(corruption_names, severities)
    clean_seed, num_clean = config.seed, num_examples or None
    manifest = corrupted.manifest if source == "folder" else None
    if dataset is None:
        dataset = (manifest or {}).get("dataset") or "cifar10"
    if manifest and manifest.get("dataset") == dataset:
        # bin/make_c output: clean accuracy on the very images that were corrupted.
        local_dir = local_dir or manifest.get("local_dir")
        clean_seed = manifest.get("seed", config.seed)
        num_clean = min(num_examples or corrupted.per_severity, corrupted.per_severity)
    clean = load_arrays(dataset, "test", data_dir=config.data_dir, local_dir=local_dir, seed=clean_seed,
                        num_examples=num_clean)
    classifiers = {name: loading.load_model(path) for name, path in zip(names, resolved)}
    loading.check_class_counts(classifiers, clean.num_classes, f"`dataset`={dataset}")
    if source == "generate":
        corrupted = sources.GeneratedSource(clean.images, clean.labels, config.seed, dataset)
    check_source_classes(corrupted, clean.num_classes, dataset)

    results, samples = evaluate(classifiers, corrupted, corruption_names, severities, clean=(clean.images, clean.labels),
                                batch_size=config.batch_size, show_progress=show_progress)
    report_config = {
        "command": command,
        "models": dict(zip(names, [os.path.abspath(p) for p in resolved])),
        "dataset": dataset, "local_dir": local_dir, "data_dir": config.data_dir,
        "num_clean_examples": int(len(clean.images)),
        "corruptions": list(corruption_names), "severities": list(severities),
        "num_examples": num_examples, "batch_size": config.batch_size, "baseline": config.baseline,
        "seed": config.seed, "seed_chunk": sources.SEED_CHUNK if source == "generate" else None,
        **report_lib.provenance(),
        **corrupted.describe(),
    }
    report = report_lib.build_report(results, report_config, config.baseline)
    ownership.claim(config.output_dir, owner, eval_config.OUTPUT_WAY_OUT, config.overwrite)
    paths = report_lib.write_report(report, config.output_dir)  # the numbers first: kept if the plots fail
    try:
        paths.update(plots.write_plots(report, config.output_dir, samples))
    except Exception as err:
        raise UsageError(f"the results are written ({', '.join(sorted(paths.values()))}) but the plots failed: "
                         f"{describe_error(err)}") from None
    return report, paths, report_lib.markdown_document(report)
