"""The evaluation configuration shared by bin/eval_c, bin/eval_adv and bin/make_c: every setting in one visible
place with one default, checked before any work starts. The tools' absl flags are generated from its fields
(mocse_tf.config_flags), so a flag, its default and its help text exist once.

From Python: `run_eval_c(EvalConfig(models=["m.keras"], source="generate", dataset="synthetic"))`.
"""

import dataclasses
import math
import os

from mocse_tf import config_flags
from mocse_tf.config_flags import setting
from mocse_tf.errors import UsageError, check_choice

TOOLS = ("eval_c", "eval_adv", "make_c")
# The attacks cost hundreds of forward and backward passes per image, so bin/eval_adv attacks the first 1000
# test images unless told otherwise (RobustBench's usual subset); the corruption tools read every image.
DEFAULT_NUM_EXAMPLES = {"eval_c": 0, "eval_adv": 1000, "make_c": 0}


@dataclasses.dataclass
class EvalConfig:
    models: tuple = setting((), "multi_string", "A SavedModel folder (or a base folder of numeric versions) or a "
                            ".keras file; repeat the flag for several models (one column each). bin/eval_adv needs "
                            "input gradients: a .keras file, or a SavedModel with bin/train's model.keras beside "
                            "it.", flag="model")
    model_names: tuple = setting((), "multi_string", "Column name of each --model, in the same order (default: "
                                 "the run folder or file name, the same in bin/eval_c and bin/eval_adv, so "
                                 "--merge_with matches the columns).", flag="model_name")
    dataset: str | None = setting(None, "string", "Clean data set: synthetic, cifar10, cifar10_local (see "
                                  "--local_dir) or cifar100 (default: the one a bin/make_c folder given as --c_dir "
                                  "was made from, else cifar10).")
    data_dir: str | None = setting(None, "string", "tfds data folder (cifar10, cifar100, cifar10_corrupted; "
                                   "default: tfds' own).")
    local_dir: str | None = setting(None, "string", "A cifar-10-batches-py folder for --dataset=cifar10_local.")
    num_examples: int | None = setting(None, "integer", "Use only the first N test images of each set (0 = all; "
                                       "default: all for bin/eval_c and bin/make_c, the first 1000 for "
                                       "bin/eval_adv).")
    batch_size: int = setting(250, "integer", "Images per batch, for evaluation and attacks.")
    seed: int = setting(0, "integer", "Seed of the corruptions of --source=generate and bin/make_c (one stateless "
                        "seed per 250 images), of --dataset=synthetic and of the attacks' random starts.")
    output_dir: str | None = setting(None, "string", "Folder for the outputs (bin/eval_c: report.json, "
                                     "accuracy.csv, table1.md and the PNGs, default runs/eval_c; bin/eval_adv: the "
                                     "first three, default runs/eval_adv; bin/make_c, required: <name>.npy, "
                                     "labels.npy and make_c.json).")
    # Corruptions (bin/eval_c, bin/make_c).
    source: str = setting("tfds", "string", "Corrupted data: tfds (official cifar10_corrupted via tfds, see "
                          "BUILD.md for offline use), folder (a CIFAR-10-C layout folder, --c_dir) or generate (on "
                          "the fly from --dataset with mocse_tf.corruptions).")
    c_dir: str | None = setting(None, "string", "Folder with <name>.npy and labels.npy for --source=folder (the "
                                "extracted CIFAR-10-C download or bin/make_c output).")
    corruptions: str = setting("all", "string", "all, benchmark (the 15), extra (the 4) or a comma-separated list "
                               "of names (tfds names; glass_blur and elastic_transform are accepted).")
    severities: str = setting("1,2,3,4,5", "string", "Comma-separated severities from 1 to 5.")
    baseline: str | None = setting(None, "string", "Model name that mCE and relative mCE are relative to.")
    # Attacks (bin/eval_adv).
    eps: float | None = setting(None, "float", "Radius in [0, 1] pixel units (default 8/255 = 0.0314 for linf, "
                                "0.5 for l2).")
    norm: str = setting("linf", "string", "Threat model: linf or l2.")
    attacks: str = setting("default", "string", "Comma-separated attacks: autoattack (the number to report: "
                           "AutoAttack's standard version, APGD-CE, APGD-T, FAB-T and Square, each on the images "
                           "still robust, a row after each stage and its worst case; on MoCSE also APGD on the "
                           "experts' margins), fgsm, pgd<k>[_<objective>] (pgd20, pgd50; step eps/4), "
                           "apgdt[<k>][_<objective>] (APGD-T, targeted DLR towards each of --targets runner-up "
                           "classes; 100 steps each), "
                           "apgd[<k>]_<objective> (apgd_ce, apgd_dlr; 100 steps), objectives ce, dlr, cw, total "
                           "(MoCSE CE + BCE), bce (the experts' BCE), margincw and margindlr (CW and DLR losses of "
                           "the experts' margins); default = pgd20,pgd50,apgd_ce,apgd_dlr and, on "
                           "MoCSE models, apgd_total,apgd_bce.")
    square_queries: int = setting(5000, "integer", "Query budget of the Square attack in --attacks=autoattack "
                                  "(the standard version's 5000).")
    targets: int = setting(9, "integer", "Target classes of APGD-T and FAB-T in --attacks=autoattack and apgdt (the "
                           "standard version's 9: the classes ranked 2nd to 10th by the clean logits); fewer than "
                           "the model's classes.")
    restarts: int = setting(1, "integer", "Random restarts of every PGD and APGD attack (e.g. 5 or 10 for a final "
                            "evaluation).")
    bce_weight: float = setting(1.0, "float", "Weight of the experts' BCE in the total-loss attack (MoCSE).")
    overwrite: bool = setting(False, "bool", "Replace an --output_dir that holds another evaluation (made by "
                              "another tool or with other settings) instead of stopping; its files are deleted.")
    merge_with: str | None = setting(None, "string", "A report.json (or its folder) from bin/eval_c or "
                                     "bin/eval_adv: its models and rows are kept and the adversarial rows added; "
                                     "the merged report goes to --output_dir.")

    def checked(self, tool):
        """A copy with `tool`'s defaults filled in (num_examples, output_dir) after checking every setting the tool
        reads that needs no data or model; raises UsageError naming the first bad value and the fix."""
        check_choice("evaluation tool", tool, TOOLS)
        config = dataclasses.replace(self, models=tuple(self.models), model_names=tuple(self.model_names))
        for name in TOOL_FIELDS[tool]:  # NaN would pass the range checks below
            value = getattr(config, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"`{name}` must be a finite number, got {value}")
        if tool == "eval_adv" and not config.bce_weight >= 0:
            raise UsageError(f"`bce_weight` must be >= 0, got {config.bce_weight}")
        if config.num_examples is None:
            config.num_examples = DEFAULT_NUM_EXAMPLES[tool]
        if not config.output_dir:
            if tool == "make_c":
                raise UsageError("`output_dir` is required: the folder to write <corruption>.npy and labels.npy into")
            config.output_dir = os.path.join("runs", tool)
        if isinstance(config.num_examples, bool) or not isinstance(config.num_examples, int) or config.num_examples < 0:
            raise UsageError(f"`num_examples` must be 0 (all) or a positive number; got {config.num_examples!r}")
        if tool != "make_c":
            if isinstance(config.batch_size, bool) or not isinstance(config.batch_size, int) or config.batch_size <= 0:
                raise UsageError(f"`batch_size` must be a positive integer; got {config.batch_size!r}")
            config.column_names()
        if tool in ("eval_c", "make_c"):
            config.corruption_names()
        if tool == "eval_c":
            config.severity_values()
            from mocse_tf.evaluation.sources import SOURCES

            check_choice("source", config.source, SOURCES)
            if config.baseline is not None and config.baseline not in config.column_names():
                raise UsageError(f"`baseline` {config.baseline!r} is not one of the model names "
                                 f"({', '.join(config.column_names())}); name the models with `model_names`")
        if tool == "eval_adv":
            from mocse_tf.attacks.checks import check_count

            for name in ("square_queries", "targets"):
                check_count(f"`{name}`", getattr(config, name))
            config.attack_specs()
            config.radius()
            config.merge_report_path()
        return config

    def inactive_settings(self, tool, given):
        """The settings among `given` (names set by the user) that do nothing for `tool` in this configuration, as
        (setting, deciding setting, its value) triples, e.g. ("c_dir", "source", "generate")."""
        return config_flags.inactive_settings(self, given, [
            (("c_dir",), "source", tool == "eval_c" and self.source != "folder"),
            (("bce_weight",), "attacks", tool == "eval_adv" and not any(
                s.objective == "mocse_total" or s.kind == "autoattack" for s in self.attack_specs())),
            (("local_dir",), "dataset", self.dataset not in (None, "cifar10_local")),
            (("data_dir",), "dataset", self.dataset in ("synthetic", "cifar10_local")
             and not (tool == "eval_c" and self.source == "tfds")),
        ])

    # --- the settings parsed --------------------------------------------------------------------------------

    def column_names(self):
        """One distinct name per model: `model_names`, or names from the paths (see default_model_names)."""
        paths, names = list(self.models), list(self.model_names)
        if not paths:
            raise UsageError("no model to evaluate; pass `models` PATH (a SavedModel folder or a .keras file), "
                             "once per model")
        if not names:
            return default_model_names(paths)
        if len(names) != len(paths):
            raise UsageError(f"{len(names)} `model_names` for {len(paths)} `models`; give one name per model, in the "
                             f"same order, or none")
        if len(set(names)) != len(names):
            raise UsageError(f"`model_names` values must be distinct; got {', '.join(names)}")
        return names

    def corruption_names(self):
        return parse_corruptions(self.corruptions)

    def severity_values(self):
        return parse_severities(self.severities)

    def attack_specs(self):
        from mocse_tf.evaluation.adversarial_eval import parse_attacks

        return parse_attacks(self.attacks, self.restarts)

    def radius(self):
        """eps, or the norm's usual radius when eps is None."""
        from mocse_tf.evaluation.adversarial_eval import check_budget

        return check_budget(self.eps, self.norm)

    def merge_report_path(self):
        """The report.json named by merge_with (the file, or a folder holding report.json), or None."""
        if not self.merge_with:
            return None
        from mocse_tf.evaluation.report import JSON_NAME

        path = os.path.join(self.merge_with, JSON_NAME) if os.path.isdir(self.merge_with) else self.merge_with
        if not os.path.isfile(path):
            raise UsageError(f"`merge_with` {self.merge_with!r}: no such report (expected a report.json written by "
                             f"bin/eval_c or bin/eval_adv, or the folder holding it)")
        return path


FLAG_OF = config_flags.flag_of(EvalConfig)  # the flags spelt differently (--model fills `models`), for cli.run


def define_flags(tool, flag_values=None):
    """Defines the absl flags of `tool` (one per EvalConfig field it reads), defaults and help from the fields."""
    config_flags.define_flags(EvalConfig, TOOL_FIELDS[tool], flag_values)


def config_from_flags(tool, flag_values=None):
    """The EvalConfig holding `tool`'s parsed flag values."""
    return config_flags.config_from_flags(EvalConfig, TOOL_FIELDS[tool], flag_values)


_COMMON = ("dataset", "data_dir", "local_dir", "num_examples", "seed", "output_dir")
TOOL_FIELDS = {
    "eval_c": ("models", "model_names", *_COMMON, "batch_size", "source", "c_dir", "corruptions", "severities",
               "baseline", "overwrite"),
    "eval_adv": ("models", "model_names", *_COMMON, "batch_size", "eps", "norm", "attacks", "square_queries", "targets",
                 "restarts", "bce_weight", "merge_with", "overwrite"),
    "make_c": (*_COMMON, "corruptions"),
}
# Settings that do not change what an evaluation writes: a rerun may change them and still own its folder.
_NOT_OWNING = ("batch_size", "data_dir", "local_dir", "output_dir", "overwrite")


def output_owner(config, tool, resolved_models):
    """The owner record of `tool`'s output folder (see mocse_tf.ownership): the tool and the settings that decide
    what it writes, with the models as the absolute paths actually loaded."""
    settings = {name: getattr(config, name) for name in TOOL_FIELDS[tool] if name not in _NOT_OWNING}
    settings["models"] = [os.path.abspath(path) for path in resolved_models]
    settings["model_names"] = list(config.column_names())
    for name in ("c_dir", "merge_with"):
        if settings.get(name):
            settings[name] = os.path.abspath(settings[name])
    return {"tool": f"bin/{tool}", "settings": settings}


OUTPUT_WAY_OUT = "choose another `output_dir`, or pass `overwrite` to replace it"


# --- parsing ---------------------------------------------------------------------------------------------------


def split_items(spec):
    """The items of a comma-separated setting (or of a list), stripped, empty ones dropped."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return [str(item).strip() for item in items if str(item).strip()]


def parse_corruptions(spec):
    """'all' | 'benchmark' | 'extra' | 'a,b,...' (or a list of names) -> canonical names in the official order
    of the sets, or in the order given."""
    from mocse_tf import corruptions

    sets = {"all": corruptions.ALL, "benchmark": corruptions.BENCHMARK, "extra": corruptions.EXTRA}
    items = split_items(spec)
    if not items:
        raise UsageError(f"no corruption named in {spec!r}; use all, benchmark, extra or names such as "
                         f"gaussian_noise,fog")
    names = []
    for item in items:
        for name in sets.get(item.lower(), None) or (corruptions.canonical_name(item),):
            if name not in names:
                names.append(name)
    return tuple(names)


def parse_severities(spec):
    """'1,2,3,4,5' (or a list of ints) -> a sorted tuple of distinct ints in 1..5."""
    from mocse_tf.corruptions import SEVERITIES

    severities = set()
    for item in split_items(spec):
        try:
            value = int(item)
        except ValueError:
            raise UsageError(f"severity {item!r} is not an integer; use values from 1 to 5, e.g. "
                             f"`severities`=1,3,5") from None
        if value not in SEVERITIES:
            raise UsageError(f"severity {value} is outside 1..5; use values from 1 to 5, e.g. `severities`=1,3,5")
        severities.add(value)
    if not severities:
        raise UsageError(f"no severity in {spec!r}; use values from 1 to 5, e.g. `severities`=1,2,3,4,5")
    return tuple(sorted(severities))


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
