"""The paper's Table 1 by one command (`bin/table1`): train PreAct-ResNet-18 and MoCSE under standard, adversarial
and augmented training for every seed, evaluate each model on all 19 corruptions x 5 severities and under attack,
and write every cell as mean +- std over seeds beside the paper's value, with the paired MoCSE - PreAct difference.

Output folder (`output_dir`, resumable at every level: rerunning the same command skips what is finished and
resumes an unfinished training at its last epoch):

    owner.json                    what this table is (scale, recipe, evaluation; mocse_tf.ownership): another
                                  table is refused
    train/<run>/                  one training run folder each (mocse_tf.training.run: checkpoints, history)
    models/<run>/model.keras      the trained networks (and their SavedModels)
    corrupted/                    the corrupted test set, made once by make_c and read by every evaluation
    eval/<run>/corruption/        bin/eval_c's report of that model (accuracy and ECE per cell)
    eval/<run>/adversarial/       bin/eval_adv's report of that model
    table1.md, report.json, table1.csv, table1_*.png   the table
"""

import dataclasses
import functools
import math
import os
import time

from mocse_tf import ownership
from mocse_tf.config_flags import setting
from mocse_tf.errors import UsageError
from mocse_tf.evaluation.config import EvalConfig, split_items
from mocse_tf.experiments import seed_statistics
from mocse_tf.training.config import TrainConfig
from mocse_tf.files import read_json, write_csv, write_json, write_text
from mocse_tf.progress import StageProgress, format_seconds

REGIMES = ("standard", "adversarial", "augmented")
CORRUPTION_SOURCES = ("generate", "folder", "tfds")
PAPER_FILE = os.path.join(os.path.dirname(__file__), "paper_table1.json")
# The paper's adversarial training (Madry et al. / Rice et al.): PGD, 10 steps of 2/255 in an L-inf ball of 8/255.
PAPER_ADV = {"adv_steps": 10, "adv_step_size": 2.0 / 255.0, "adv_eps": 8.0 / 255.0}

MARKDOWN_FILE = "table1.md"
REPORT_FILE = "report.json"
CSV_FILE = "table1.csv"
RATES_FILE = "progress_rates.json"  # seconds per forward-pass equivalent measured so far, per stage and network


@dataclasses.dataclass
class Table1Config:
    """Scale and settings of one Table 1, each field also a flag of bin/table1 (mocse_tf.config_flags). Defaults
    are the paper's full setting (a GPU job)."""

    output_dir: str = setting("runs/table1", "string", "Folder of the whole table (runs, models, evaluations, "
                              "table1.md); rerunning the same command resumes it. Keep it outside the repository or "
                              "under runs/.")
    seeds: str = setting("0,1,2", "string", "Comma-separated seeds; every model is trained once per seed (e.g. "
                         "0,1,2).")
    rows: str = setting(",".join(REGIMES), "string", "Training regimes to run: any of standard, adversarial, "
                        "augmented (comma-separated).")
    mocse_aggregates: str = setting("margin", "string", "MoCSE aggregates: the first is the MoCSE column (margin = "
                                    "the default), more add ablation columns (e.g. margin,true_prob for the paper's "
                                    "literal reading).")
    dataset: str = setting("cifar10", "string", "Data set: cifar10 (tfds), cifar10_local (see --local_dir), "
                           "synthetic or cifar100.")
    data_dir: str | None = setting(None, "string", "tfds data folder (cifar10 and, for --corruption_source=tfds, "
                                   "cifar10_corrupted).")
    local_dir: str | None = setting(None, "string", "A cifar-10-batches-py folder for --dataset=cifar10_local.")
    epochs: int = setting(200, "integer", "Training epochs of every model (the paper: 200).")
    width: int = setting(64, "integer", "PreAct-ResNet-18 base width (the paper: 64).")
    expert_width: int = setting(16, "integer", "Width of each MoCSE expert (16: compute comparable to one "
                                "PreAct-ResNet-18 of width 64).")
    num_train_examples: int = setting(0, "integer", "Train on the first N training images (0 = all).")
    num_test_examples: int = setting(0, "integer", "Clean and corrupted test images per set (0 = all); also each "
                                     "epoch's validation set.")
    num_attack_examples: int = setting(1000, "integer", "Test images attacked by the adversarial evaluation.")
    batch_size: int = setting(128, "integer", "Training batch size.")
    learning_rate: float = setting(0.1, "float", "Peak learning rate of the cosine schedule (torch.optim.SGD "
                                   "recipe, momentum 0.9, coupled weight decay 5e-4).")
    adv_steps: int = setting(PAPER_ADV["adv_steps"], "integer", "PGD steps of adversarial training (the paper's "
                             "recipe: 10; fewer is labelled REDUCED).")
    adv_step_size: float = setting(PAPER_ADV["adv_step_size"], "float", "PGD step of adversarial training in [0, 1] "
                                   "pixel units (2/255 = 0.00784).")
    adv_eps: float = setting(PAPER_ADV["adv_eps"], "float", "L-inf radius of adversarial training in [0, 1] pixel "
                             "units (8/255 = 0.0314).")
    corruption_source: str = setting("generate", "string", "generate (make_c writes the 19 x 5 corrupted test set "
                                     "once into <output_dir>/corrupted and every model reads it), folder (--c_dir, "
                                     "e.g. the extracted CIFAR-10-C) or tfds (cifar10_corrupted).")
    c_dir: str | None = setting(None, "string", "Folder for --corruption_source=folder.")
    attacks: str = setting("autoattack", "string", "Attacks of the adversarial evaluation (bin/eval_adv --attacks): "
                           "autoattack (default: AutoAttack's standard version, the number to report), or e.g. "
                           "pgd20 or default (PGD/APGD set) for a cheaper run.")
    attack_restarts: int = setting(1, "integer", "Random restarts of each attack.")
    square_queries: int = setting(EvalConfig.square_queries, "integer", "Query budget of AutoAttack's Square stage "
                                  f"(the standard version: {EvalConfig.square_queries}).")
    targets: int = setting(EvalConfig.targets, "integer", "Target classes of AutoAttack's APGD-T and FAB-T stages (the "
                           f"standard version: {EvalConfig.targets}).")
    eval_batch_size: int = setting(250, "integer", "Batch size of the evaluations.")
    dry_run: bool = setting(False, "bool", "Print the runs and their estimated cost (images x forward/backward "
                            "passes) and stop.")

    # Fields that choose which runs to make or how they are reported; a rerun may change them freely.
    SELECTION = ("output_dir", "seeds", "rows", "mocse_aggregates", "dry_run", "data_dir", "local_dir", "c_dir",
                 "eval_batch_size")

    def identity(self):
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in self.SELECTION}

    @property
    def adversarial_recipe_is_papers(self):
        return (self.adv_steps == PAPER_ADV["adv_steps"] and math.isclose(self.adv_step_size, PAPER_ADV["adv_step_size"])
                and math.isclose(self.adv_eps, PAPER_ADV["adv_eps"]))

    def adversarial_recipe(self):
        """'PGD-10, step 2/255, eps 8/255', marked plainly when it is not the paper's recipe."""
        text = (f"PGD-{self.adv_steps}, step {255 * self.adv_step_size:.3g}/255, eps {255 * self.adv_eps:.3g}/255")
        return text if self.adversarial_recipe_is_papers else \
            f"{text} (REDUCED: the paper's recipe is PGD-10, step 2/255, eps 8/255)"


# --- checking and planning ----------------------------------------------------------------------------------


def parse_seeds(spec):
    items = split_items(str(spec))
    if not items:
        raise UsageError(f"no seed in {spec!r}; give one or more non-negative integers, e.g. `seeds`=0,1,2")
    seeds = []
    for item in items:
        if not item.isdigit():
            raise UsageError(f"seed {item!r} is not a non-negative integer; e.g. `seeds`=0,1,2")
        if int(item) not in seeds:
            seeds.append(int(item))
    return tuple(seeds)


def _names(what, spec, choices):
    """The comma-separated names of `spec`, each one of `choices`."""
    items = split_items(str(spec))
    if not items:
        raise UsageError(f"no {what} in {spec!r}; choose from {', '.join(choices)}")
    unknown = [item for item in items if item not in choices]
    if unknown:
        raise UsageError(f"unknown {what} {unknown[0]!r}; choose from {', '.join(choices)} (comma-separated)")
    return items


def parse_rows(spec):
    items = _names("row", spec, REGIMES)
    return tuple(r for r in REGIMES if r in items)


def parse_aggregates(spec):
    from mocse_tf.models import AGGREGATORS

    return tuple(dict.fromkeys(_names("MoCSE aggregate", spec, tuple(AGGREGATORS))))


def validate(config):
    """Raises UsageError naming the first bad value; returns (seeds, rows, aggregates)."""
    seeds, rows, aggregates = parse_seeds(config.seeds), parse_rows(config.rows), parse_aggregates(config.mocse_aggregates)
    for field in ("epochs", "width", "expert_width", "batch_size", "adv_steps", "attack_restarts", "eval_batch_size",
                  "square_queries", "targets"):
        value = getattr(config, field)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UsageError(f"`{field}` must be a positive integer, got {value!r}")
    for field in ("num_train_examples", "num_test_examples", "num_attack_examples"):
        value = getattr(config, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"`{field}` must be 0 (all) or a positive integer, got {value!r}")
    if 0 < config.num_train_examples < config.batch_size:
        raise UsageError(f"`num_train_examples`={config.num_train_examples} leaves fewer than one batch of "
                         f"`batch_size`={config.batch_size}; raise `num_train_examples` or lower `batch_size`")
    if config.corruption_source not in CORRUPTION_SOURCES:
        raise UsageError(f"unknown `corruption_source` {config.corruption_source!r}; choose from "
                         f"{', '.join(CORRUPTION_SOURCES)}")
    if config.corruption_source == "folder" and not config.c_dir:
        raise UsageError("`corruption_source`=folder needs `c_dir` (an extracted CIFAR-10-C or bin/make_c folder)")
    if config.dataset == "cifar10_local" and not config.local_dir:
        raise UsageError("`dataset`=cifar10_local needs `local_dir` (a cifar-10-batches-py folder)")
    if not (0 < config.adv_eps <= 1 and 0 < config.adv_step_size <= 1):
        raise UsageError(f"`adv_eps` and `adv_step_size` are in [0, 1] pixel units (8/255 = 0.0314), got "
                         f"{config.adv_eps} and {config.adv_step_size}")
    if config.learning_rate <= 0:
        raise UsageError(f"`learning_rate` must be > 0, got {config.learning_rate}")
    from mocse_tf.evaluation.adversarial_eval import parse_attacks

    parse_attacks(config.attacks, config.attack_restarts)
    return seeds, rows, aggregates


@dataclasses.dataclass(frozen=True)
class Run:
    """One trained model of the table: a training regime, a network and a seed."""

    regime: str
    arch: str
    aggregate: str | None  # MoCSE only
    seed: int

    @property
    def model(self):
        """Column key: preact_resnet18, mocse (the first aggregate) or mocse_<aggregate> (ablations)."""
        return self.arch if self.aggregate is None else f"mocse_{self.aggregate}"

    @property
    def name(self):
        return f"{self.regime}_{self.model}_seed{self.seed}"


def model_keys(aggregates):
    """Column keys in table order; the first MoCSE aggregate is named plain 'mocse'."""
    return ["preact_resnet18", "mocse"] + [f"mocse_{a}" for a in aggregates[1:]]


# Rows are trained cheapest first (adversarial training costs 1 + PGD steps passes per image), so a table stopped
# early holds complete, paired rows; the table itself shows them in the paper's order (REGIMES).
RUN_ORDER = ("standard", "augmented", "adversarial")


def plan(config):
    """Every run of the table, row by row (RUN_ORDER), every seed of a row before the next row."""
    seeds, rows, aggregates = validate(config)
    runs = []
    for regime in sorted(rows, key=RUN_ORDER.index):
        for seed in seeds:
            runs.append(Run(regime, "preact_resnet18", None, seed))
            for index, aggregate in enumerate(aggregates):
                runs.append(Run(regime, "mocse", aggregate, seed) if index else Run(regime, "mocse", None, seed))
    return runs, aggregates


def run_aggregate(run, aggregates):
    return aggregates[0] if run.arch == "mocse" and run.aggregate is None else (run.aggregate or "margin")


def train_config(config, run, aggregates):
    """The TrainConfig of a run: the recipe of configs/table1_<regime>_<arch>.flags at the table's scale."""
    is_mocse = run.arch == "mocse"
    return TrainConfig(
        arch=run.arch, dataset=config.dataset, data_dir=config.data_dir, local_dir=config.local_dir,
        num_train_examples=config.num_train_examples, num_test_examples=config.num_test_examples,
        width=config.expert_width if is_mocse else config.width,
        aggregate=run_aggregate(run, aggregates), bce_weight=1.0,
        augment="augmented" if run.regime == "augmented" else "standard",
        epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
        lr_schedule="cosine", momentum=0.9, nesterov=False, weight_decay=5e-4, weight_decay_mode="coupled",
        seed=run.seed,
        adv="pgd" if run.regime == "adversarial" else "none",
        adv_eps=config.adv_eps, adv_step_size=config.adv_step_size, adv_steps=config.adv_steps,
        run_name=run.name, output_dir=os.path.join(config.output_dir, "train", run.name),
        export_dir=os.path.join(config.output_dir, "models"), verbose=0,
    )


# --- cost -----------------------------------------------------------------------------------------------------


def attack_passes(config, has_experts):
    """Forward+backward passes per attacked image of the adversarial evaluation (an upper bound: only the
    clean-correct images are attacked)."""
    from mocse_tf.attacks import autoattack
    from mocse_tf.evaluation.adversarial_eval import AUTOATTACK, applicable, parse_attacks

    def passes(spec):
        if spec.kind != AUTOATTACK:
            return (1 if spec.kind == "fgsm" else spec.steps) * spec.restarts
        # APGD-CE, APGD-T and FAB-T (one forward+backward per step and target), Square (forward passes only, a
        # third of a forward+backward each), and for MoCSE the two margin stages (APGD and APGD-T).
        targeted = config.targets * autoattack.APGD_STEPS
        square = -(-config.square_queries // 3)
        total = autoattack.APGD_STEPS + targeted + config.targets * autoattack.FAB_STEPS + square
        return total + (autoattack.APGD_STEPS + targeted if has_experts else 0)

    specs = applicable(parse_attacks(config.attacks, config.attack_restarts), has_experts)
    return sum(passes(s) for s in specs)


def run_costs(config, run, num_train, num_test):
    """{stage: (images, passes per image, what a pass is)} of one run."""
    steps = num_train // config.batch_size
    trained = config.epochs * steps * config.batch_size
    adversarial = run.regime == "adversarial"
    n_corrupted = num_test * 19 * 5
    return {
        "train": (trained, 1 + (config.adv_steps if adversarial else 0), "forward+backward"),
        "validation": (config.epochs * num_test, 1, "forward"),
        "corruption": (num_test + n_corrupted, 1, "forward"),
        "adversarial": (config.num_attack_examples, attack_passes(config, run.arch == "mocse"), "forward+backward"),
    }


def forward_equivalents(costs):
    """Total cost in forward passes, counting a backward pass as two forward passes."""
    return sum(images * passes * (3 if kind == "forward+backward" else 1) for images, passes, kind in costs.values())


# --- the table folder -------------------------------------------------------------------------------------------


def claim_folder(config):
    """Creates output_dir or checks that it holds this same table (mocse_tf.ownership); never touches another
    table's runs."""
    ownership.claim(config.output_dir, {"tool": "bin/table1", "settings": config.identity()},
                    "use a new `output_dir`, or rerun with the same settings to resume it")


def _training_finished(train_cfg):
    from mocse_tf.export import KERAS_FILE
    from mocse_tf.training.run_state import RunFolder

    results = read_json(os.path.join(train_cfg.output_dir, RunFolder.RESULTS), default={})
    keras_path = os.path.join(train_cfg.export_dir, train_cfg.run_name, KERAS_FILE)
    return results.get("epochs_trained") == train_cfg.epochs and os.path.isfile(keras_path), keras_path


def _epochs_done(train_cfg):
    from mocse_tf.training.run_state import RunFolder

    return len(RunFolder(train_cfg).history())  # the epochs a (resumable) training has finished


def _eval_dir(config, run, kind):
    return os.path.join(config.output_dir, "eval", run.name, kind)


def _eval_report(config, run, kind):
    """The report.json that bin/eval_c (kind corruption) or bin/eval_adv (adversarial) wrote for a run."""
    from mocse_tf.evaluation.report import JSON_NAME

    return os.path.join(_eval_dir(config, run, kind), JSON_NAME)


def _corrupted_dir(config):
    return os.path.join(config.output_dir, "corrupted")


# --- the stages -----------------------------------------------------------------------------------------------------


def _train(train_cfg, on_epoch):
    import keras

    from mocse_tf.training.run import train

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            on_epoch(epoch + 1, logs or {})

    train(train_cfg, callbacks=[EpochLine()])


def _eval_config(config, **settings):
    return EvalConfig(dataset=config.dataset, data_dir=config.data_dir, local_dir=config.local_dir,
                      batch_size=config.eval_batch_size, seed=0, **settings)


def _make_corrupted_set(config):
    from mocse_tf.evaluation.make_c import run_make_c

    run_make_c(_eval_config(config, output_dir=_corrupted_dir(config), corruptions="all",
                            num_examples=config.num_test_examples), show_progress=False)


def _evaluate_corruptions(config, run, keras_path, output_dir):
    from mocse_tf.evaluation.corruption_eval import run_eval_c

    source = {"generate": "folder", "folder": "folder", "tfds": "tfds"}[config.corruption_source]
    c_dir = _corrupted_dir(config) if config.corruption_source == "generate" else config.c_dir
    run_eval_c(_eval_config(config, models=(keras_path,), model_names=(run.name,), source=source, c_dir=c_dir,
                            corruptions="all", severities="1,2,3,4,5", num_examples=config.num_test_examples,
                            output_dir=output_dir), show_progress=False)


def _evaluate_attacks(config, run, keras_path, output_dir):
    from mocse_tf.evaluation.adversarial_eval import run_eval_adv

    run_eval_adv(_eval_config(config, models=(keras_path,), model_names=(run.name,),
                              num_examples=config.num_attack_examples, attacks=config.attacks,
                              restarts=config.attack_restarts, square_queries=config.square_queries,
                              targets=config.targets, bce_weight=1.0, output_dir=output_dir),
                 log=lambda *args, **kwargs: None)


def _dataset_sizes(config):
    from mocse_tf.data import load_arrays

    train = load_arrays(config.dataset, "train", data_dir=config.data_dir, local_dir=config.local_dir,
                        num_examples=config.num_train_examples or None)
    test = load_arrays(config.dataset, "test", data_dir=config.data_dir, local_dir=config.local_dir,
                       num_examples=config.num_test_examples or None)
    if len(train) < config.batch_size:
        raise UsageError(f"{config.dataset} gives {len(train)} training images, fewer than one batch of "
                         f"`batch_size`={config.batch_size}; lower `batch_size` or use more training images")
    return len(train), len(test)


def dry_run_lines(config, runs, num_train, num_test):
    lines = [f"Table 1 plan: {len(runs)} trainings ({num_train} training images, {num_test} test images per set, "
             f"{config.epochs} epochs, adversarial rows: {config.adversarial_recipe()}); costs in images x passes:"]
    total = 0
    for index, run in enumerate(runs, 1):
        costs = run_costs(config, run, num_train, num_test)
        total += forward_equivalents(costs)
        parts = "; ".join(f"{stage} {images:,} x {passes} {kind}" for stage, (images, passes, kind) in costs.items())
        lines.append(f"  [{index}/{len(runs)}] {run.name}: {parts}")
    lines.append(f"total: {total:,} forward-pass equivalents (a backward pass counted as two forward passes)")
    return lines


def run_table1(config, log=print):
    """Everything bin/table1 does. Returns {kind: path} of the written table (empty for a dry run)."""
    runs, aggregates = plan(config)
    num_train, num_test = _dataset_sizes(config)
    if config.dry_run:
        for line in dry_run_lines(config, runs, num_train, num_test):
            log(line)
        return {}
    claim_folder(config)
    if config.corruption_source == "generate":
        started = time.time()
        _make_corrupted_set(config)
        log(f"corrupted test set ready in {_corrupted_dir(config)} ({format_seconds(time.time() - started)})")

    stages = {}
    for run in runs:
        costs = run_costs(config, run, num_train, num_test)
        done = _epochs_done(train_config(config, run, aggregates)) / config.epochs
        stages[(run.name, "train")] = {"units": forward_equivalents({k: costs[k] for k in ("train", "validation")}),
                                       "kind": run.arch, "done": min(1.0, done)}
        for stage in ("corruption", "adversarial"):
            finished = os.path.isfile(_eval_report(config, run, stage))
            stages[(run.name, stage)] = {"units": forward_equivalents({stage: costs[stage]}), "kind": run.arch,
                                         "done": 1.0 if finished else 0.0}
    progress = StageProgress(stages, log, rates_path=os.path.join(config.output_dir, RATES_FILE))
    for index, run in enumerate(runs, 1):
        say = functools.partial(progress.line, f"[{index}/{len(runs)}] {run.regime} {run.model} seed {run.seed}")
        _train_and_evaluate(config, run, train_config(config, run, aggregates), progress, say)
    table = build_table(config, runs, aggregates)
    return write_table(table, config.output_dir)


def _train_and_evaluate(config, run, train_cfg, progress, say):
    """One run of the table: its training (skipped when finished, resumed when begun), then its evaluations."""
    finished, keras_path = _training_finished(train_cfg)
    if finished:
        progress.stages[(run.name, "train")]["done"] = 1.0
        say("training finished before, skipped")
    else:
        start_epoch = _epochs_done(train_cfg)
        clock = {"last": time.time(), "start": time.time()}

        def on_epoch(epoch, logs):
            now = time.time()
            progress.record(run.name, "train", epoch / config.epochs, now - clock["last"],
                            progress.stages[(run.name, "train")]["units"] / config.epochs)
            clock["last"] = now
            accuracy = logs.get("val_accuracy")
            say(f"train epoch {epoch}/{config.epochs}"
                + (f", test accuracy {100 * accuracy:.2f}%" if accuracy is not None else "")
                + f", run {format_seconds(now - clock['start'])}")

        say("training starts" if start_epoch == 0 else f"training resumes after epoch {start_epoch}/{config.epochs}")
        _train(train_cfg, on_epoch)
        keras_path = _training_finished(train_cfg)[1]
    for stage, evaluate in (("corruption", _evaluate_corruptions), ("adversarial", _evaluate_attacks)):
        output_dir = _eval_dir(config, run, stage)
        # A model trained (or finished) in this invocation is evaluated again: an older report is of another model.
        if finished and os.path.isfile(_eval_report(config, run, stage)):
            progress.stages[(run.name, stage)]["done"] = 1.0
            say(f"{stage} evaluation finished before, skipped")
            continue
        started = time.time()
        evaluate(config, run, keras_path, output_dir)
        progress.record(run.name, stage, 1.0, time.time() - started, progress.stages[(run.name, stage)]["units"])
        say(f"{stage} evaluation done in {format_seconds(time.time() - started)}")


# --- the table ------------------------------------------------------------------------------------------------------


def load_paper_table():
    return read_json(PAPER_FILE)


def run_metrics(config, run):
    """{metric: value in [0, 1]} of one finished run, read from its evaluation reports (None when missing)."""
    from mocse_tf.evaluation import report as report_lib

    metrics = {}
    corruption_path = _eval_report(config, run, "corruption")
    if os.path.isfile(corruption_path):
        report = report_lib.load_report(corruption_path)
        summary = report["summary"][run.name]
        metrics = {"clean": report["models"][run.name].get("clean"), **summary["corruption_average"],
                   **{key: summary.get(key) for key in ("average", "benchmark_average", "ece_clean",
                                                        "ece_corruption_average")}}
    adversarial_path = _eval_report(config, run, "adversarial")
    if os.path.isfile(adversarial_path):
        report = report_lib.load_report(adversarial_path)
        for label, value in report["models"][run.name].get("adversarial", {}).items():
            metrics[f"adv: {label}"] = value
    return metrics


def table_rows(paper, per_run):
    """Row keys in display order: the paper's 20 rows, its average, then the extra measurements present."""
    rows = list(paper["rows"]) + list(paper["summary_rows"]) + ["benchmark_average", "ece_clean",
                                                                   "ece_corruption_average"]
    extra = []
    for metrics in per_run.values():
        extra += [k for k in metrics if k.startswith("adv: ") and k not in extra]
    return rows + extra


def build_table(config, runs, aggregates):
    """The table as a dict: per regime, per model, per row, the statistics over seeds; the paired differences."""
    paper = load_paper_table()
    per_run = {run.name: run_metrics(config, run) for run in runs}
    rows = table_rows(paper, per_run)
    regimes = [r for r in REGIMES if any(run.regime == r for run in runs)]
    models = model_keys(aggregates)
    cells, differences = {}, {}
    for regime in regimes:
        cells[regime] = {}
        for model in models:
            by_seed = {run.seed: per_run[run.name] for run in runs if run.regime == regime and run.model == model}
            cells[regime][model] = {row: dict(seed_statistics.mean_std([m.get(row) for m in by_seed.values()]),
                                              by_seed={str(s): m.get(row) for s, m in by_seed.items()})
                                    for row in rows}
        differences[regime] = {}
        for model in models[1:]:
            differences[regime][model] = {}
            for row in rows:
                first = {int(s): v for s, v in cells[regime][model][row]["by_seed"].items()}
                second = {int(s): v for s, v in cells[regime]["preact_resnet18"][row]["by_seed"].items()}
                differences[regime][model][row] = seed_statistics.paired_difference(first, second)
    return {
        "config": dataclasses.asdict(config),
        "adversarial_recipe": config.adversarial_recipe(),
        "mocse_aggregates": list(aggregates),
        "paper": paper,
        "rows": rows,
        "models": models,
        "cells": cells,
        "differences": differences,
        "runs": {run.name: {"regime": run.regime, "model": run.model, "seed": run.seed,
                            "metrics": per_run[run.name]} for run in runs},
    }


def _row_title(row):
    from mocse_tf.evaluation.report import display_name

    titles = {"clean": "Natural Samples", "average": "Average of 19 Corruptions",
              "benchmark_average": "Average of the 15 benchmark corruptions",
              "ece_clean": "ECE, natural samples (15 bins; lower is better)",
              "ece_corruption_average": "ECE, average over corruptions (lower is better)"}
    if row in titles:
        return titles[row]
    if row.startswith("adv: "):
        return "Adversarial: " + row[len("adv: "):]
    return display_name(row)


def _paper_value(table, regime, model, row):
    value = table["paper"]["values"].get(regime, {}).get(model, {}).get(row)
    return "–" if value is None else f"{value:.2f}"


def _difference_cell(stats):
    text = seed_statistics.format_mean_std(stats, signed=True)
    return text if text == "–" else text + (" *" if stats.get("separated") else "") + f" (n={stats['n']})"


def markdown(table):
    config = table["config"]
    models = table["models"]
    seeds = sorted({run["seed"] for run in table["runs"].values()})
    lines = [
        "# Table 1: PreAct-ResNet-18 vs MoCSE, standard / adversarial / augmented training",
        "",
        f"Accuracy (%) as mean ± sample standard deviation over seeds {', '.join(map(str, seeds))}; "
        f"'paper' = Kotyan & Vargas' Table 1 (– where the value is not available here, see "
        f"mocse_tf/experiments/paper_table1.json). 'MoCSE − PreAct' is the paired difference over seeds "
        f"(same seed = same data order, augmentation and initialisation seed), mean ± std of the per-seed "
        f"differences; * marks a difference whose 95% Student-t interval over the paired seeds excludes zero "
        f"(with 2 seeds that needs |mean| > 12.7 x std / sqrt(2)).",
        "",
        f"Scale: data set {config['dataset']}, {config['epochs']} epochs, PreAct-ResNet-18 width {config['width']}, "
        f"MoCSE expert width {config['expert_width']}, {config['num_train_examples'] or 'all'} training images, "
        f"{config['num_test_examples'] or 'all'} test images per clean/corrupted set (19 corruptions x 5 "
        f"severities, corruption source {config['corruption_source']}), {config['num_attack_examples']} attacked "
        f"test images (attacks: {config['attacks']}). Adversarial training: {table['adversarial_recipe']}. "
        f"MoCSE aggregate: {table['mocse_aggregates'][0]}"
        + (f"; ablation columns: {', '.join(table['mocse_aggregates'][1:])}" if len(table['mocse_aggregates']) > 1
           else "") + ".",
    ]
    for regime, by_model in table["cells"].items():
        title = {"standard": "Standard training", "adversarial": "Adversarial training",
                 "augmented": "Augmented training"}[regime]
        if regime == "adversarial":
            title += f" ({table['adversarial_recipe']})"
        header = ["row", "PreAct-ResNet-18", "paper", "MoCSE", "paper", "MoCSE − PreAct"]
        for model in models[2:]:
            header += [f"MoCSE [{model[len('mocse_'):]}] (ablation)", f"[{model[len('mocse_'):]}] − PreAct"]
        lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        for row in table["rows"]:
            stats = {model: by_model[model][row] for model in models}
            if all(s["mean"] is None for s in stats.values()) and _paper_value(table, regime, "mocse", row) == "–":
                continue
            cells = [_row_title(row),
                     seed_statistics.format_mean_std(stats["preact_resnet18"]),
                     _paper_value(table, regime, "preact_resnet18", row),
                     seed_statistics.format_mean_std(stats["mocse"]),
                     _paper_value(table, regime, "mocse", row),
                     _difference_cell(table["differences"][regime]["mocse"][row])]
            for model in models[2:]:
                cells += [seed_statistics.format_mean_std(stats[model]),
                          _difference_cell(table["differences"][regime][model][row])]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Paper: {table['paper']['source']['title']}, {table['paper']['source']['authors']}, "
                  f"{table['paper']['source']['table']}. {table['paper']['note']}"]
    return "\n".join(lines) + "\n"


def csv_rows(table):
    def number(value):
        return "" if value is None else repr(value)

    rows = []
    for regime, by_model in table["cells"].items():
        for model, by_row in by_model.items():
            for row, stats in by_row.items():
                difference = table["differences"][regime].get(model, {}).get(row) or {}  # none for PreAct itself
                rows.append({
                    "regime": regime, "model": model, "row": row, "n_seeds": stats["n"],
                    "mean": number(stats["mean"]), "std": number(stats["std"]),
                    "per_seed": ";".join(f"{s}:{v!r}" for s, v in stats["by_seed"].items() if v is not None),
                    "paper_percent": number(table["paper"]["values"].get(regime, {}).get(model, {}).get(row)),
                    "minus_preact_mean": number(difference.get("mean")),
                    "minus_preact_std": number(difference.get("std")),
                })
    return rows


CSV_FIELDS = ("regime", "model", "row", "n_seeds", "mean", "std", "per_seed", "paper_percent", "minus_preact_mean",
              "minus_preact_std")


def write_table(table, output_dir):
    """table1.md, report.json, table1.csv and two plots (mocse_tf.files: each complete or not there)."""
    from mocse_tf.experiments import table1_plots

    paths = {"markdown": write_text(os.path.join(output_dir, MARKDOWN_FILE), markdown(table)),
             "json": write_json(os.path.join(output_dir, REPORT_FILE), table, sort_keys=False, allow_nan=False),
             "csv": write_csv(os.path.join(output_dir, CSV_FILE), CSV_FIELDS, csv_rows(table))}
    paths.update(table1_plots.write_plots(table, output_dir))
    return paths
