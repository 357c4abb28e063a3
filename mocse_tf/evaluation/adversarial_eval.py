"""Adversarial robustness of one or more models (bin/eval_adv): clean accuracy and robust accuracy under PGD,
APGD and AutoAttack (`mocse_tf.attacks.autoattack`, the standard version: a row after each of its stages and its
per-example worst case) on the first N test images, attacks on MoCSE's experts, and the per-example worst case over
all attacks. Each model entry also gets a "sanity" section (`sanity.py`): the fraction of all-zero input gradients
per attack, whether the same input gives the same output twice, and warnings, printed too, when Square or FAB-T
fooled images that APGD missed (gradient masking suspected).

Robust accuracy counts an example as robust under an attack only if the model classifies it correctly both clean
and at the attack's adversarial point (only clean-correct examples are attacked), so robust <= clean always; the
worst case counts an example only if it survives every attack. The numbers go into the project's one report
(`report.py`): each model entry gets an "adversarial" section {row label: accuracy}, either in a new report or
merged into an existing one (e.g. bin/eval_c's report.json), so one table shows clean, corruption and adversarial
accuracy side by side.

Attacks need gradients with respect to the input, so models load as Keras networks: a `.keras` file, or a
SavedModel folder whose sibling `model.keras` (bin/train writes both into saved_models/<run>/) is checked to give
the SavedModel's logits.
"""

import dataclasses
import functools
import os
import re
import time

import numpy as np
import tensorflow as tf

from mocse_tf import attacks, loading, ownership
from mocse_tf.attacks import autoattack
from mocse_tf.attacks.checks import check_count
from mocse_tf.data import load_arrays, make_pipeline
from mocse_tf.errors import UsageError, check_choice
from mocse_tf.evaluation import config as eval_config
from mocse_tf.evaluation import report as report_lib
from mocse_tf.evaluation import sanity
from mocse_tf.labels import LABEL_DTYPE, NUMPY_LABEL_DTYPE, top1_correct
from mocse_tf.progress import Progress

NORMS = ("linf", "l2")
DEFAULT_EPS = {"linf": 8.0 / 255.0, "l2": 0.5}
# APGD's budget when the name gives none (Croce & Hein use 100 iterations), and PGD's step as a fraction of eps
# (2/255 at 8/255, as in Madry et al.'s and Rice et al.'s evaluations).
APGD_DEFAULT_STEPS = 100
PGD_STEP_FRACTION = 0.25

# Attack-name suffix -> (mocse_tf.attacks objective, display name, needs the experts' outputs).
OBJECTIVES = {
    "ce": ("ce", "CE", False),
    "dlr": ("dlr", "DLR", False),
    "total": ("mocse_total", "total loss CE+BCE", True),
    "bce": ("expert_bce", "expert BCE", True),
    "cw": ("cw", "CW margin", False),
    "margincw": ("margin_cw", "experts' CW margin", True),
    "margindlr": ("margin_dlr", "experts' DLR margin", True),
}
# "default": the attacks every model gets, then those aimed at MoCSE's experts (run on models that have them).
DEFAULT_ATTACKS = ("pgd20", "pgd50", "apgd_ce", "apgd_dlr")
DEFAULT_EXPERT_ATTACKS = ("apgd_total", "apgd_bce")
_NAME = re.compile(r"^(?P<kind>fgsm|pgd|apgdt|apgd)(?P<steps>\d*)(?:_(?P<objective>[a-z]+))?$")
ATTACK_HELP = ("autoattack (AutoAttack's standard version: APGD-CE, APGD-T, FAB-T, Square, + two attacks on the "
               "experts' margins on MoCSE), fgsm, pgd<k>[_<objective>] (e.g. pgd20, pgd50, pgd20_dlr), "
               "apgd[<k>]_<objective> (apgd_ce, apgd_dlr, apgd50_ce; APGD runs 100 steps unless <k> says otherwise), "
               "apgdt[<k>][_<objective>] (APGD-T: targeted DLR, or a margin objective, towards the `targets` "
               "runner-up classes in turn; apgdt, apgdt_margindlr), "
               "objectives ce, dlr, cw, total (MoCSE's CE + BCE), bce (the experts' BCE), margincw and margindlr (CW "
               "and DLR losses of the experts' margins z_true - z_false), or 'default' = "
               f"{','.join(DEFAULT_ATTACKS)} (+ {','.join(DEFAULT_EXPERT_ATTACKS)} on MoCSE)")
AUTOATTACK = "autoattack"


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """One named attack of the evaluation, before any TensorFlow object exists."""

    name: str  # as given, e.g. "pgd20" or "apgd_dlr"
    kind: str  # fgsm, pgd or apgd
    steps: int
    objective: str  # a mocse_tf.attacks objective
    restarts: int
    needs_experts: bool
    only_if_experts: bool = False  # from the default set: skipped (not an error) on models without experts

    def label(self, eps, norm):
        """The report row, e.g. "PGD-50x5, CE (Linf 8/255)" or "APGD-100, DLR (Linf 8/255)"; x<r>: r restarts."""
        if self.kind == AUTOATTACK:
            return f"AutoAttack (worst case) ({budget_label(eps, norm)})"
        objective = next(display for obj, display, _ in OBJECTIVES.values() if obj == self.objective)
        restarts = f"x{self.restarts}" if self.restarts > 1 else ""
        attack = {"fgsm": "FGSM", "apgdt": "APGD-T", "pgd": "PGD"}.get(self.kind, "APGD")
        attack += "" if self.kind == "fgsm" else f"-{self.steps}{restarts}"
        return f"{attack}, {objective} ({budget_label(eps, norm)})"


def budget_label(eps, norm):
    """ "Linf 8/255" for radii that are whole 255ths, else "L2 0.5"."""
    in_255ths = eps * 255.0
    value = f"{round(in_255ths)}/255" if abs(in_255ths - round(in_255ths)) < 1e-6 and round(in_255ths) else f"{eps:g}"
    return f"{'Linf' if norm == 'linf' else 'L2'} {value}"


def worst_case_label(eps, norm):
    return f"Worst case over all attacks ({budget_label(eps, norm)})"


def stage_label(stage_name, eps, norm):
    """The report row of one AutoAttack stage: robust accuracy after it and every stage before it."""
    return f"AutoAttack after {stage_name} ({budget_label(eps, norm)})"


def parse_attack(name, restarts):
    """One attack name (see ATTACK_HELP) -> AttackSpec."""
    if name == AUTOATTACK:  # its stages run as the reference runs them: one restart each
        return AttackSpec(name, AUTOATTACK, APGD_DEFAULT_STEPS, AUTOATTACK, 1, False)
    match = _NAME.match(name)
    if not match:
        raise UsageError(f"unknown attack {name!r} in `attacks`; use {ATTACK_HELP}")
    kind, steps, suffix = match.group("kind"), match.group("steps"), match.group("objective")
    if kind == "fgsm" and steps:
        raise UsageError(f"`attacks` {name!r}: FGSM is one step; write fgsm (or pgd{steps} for {steps} steps)")
    if kind == "pgd" and not steps:
        raise UsageError(f"`attacks` {name!r}: say how many PGD steps, e.g. pgd20 or pgd50")
    if kind == "apgd" and not suffix:
        raise UsageError(f"`attacks` {name!r}: name APGD's objective, e.g. apgd_ce or apgd_dlr")
    suffix = suffix or ("dlr" if kind == "apgdt" else "ce")
    if suffix not in OBJECTIVES:
        raise UsageError(f"`attacks` {name!r}: unknown objective {suffix!r}; choose one of {', '.join(OBJECTIVES)}")
    steps = int(steps) if steps else (1 if kind == "fgsm" else APGD_DEFAULT_STEPS)
    if steps < 1:
        raise UsageError(f"`attacks` {name!r}: the number of steps must be at least 1")
    objective, _, needs_experts = OBJECTIVES[suffix]
    return AttackSpec(name, kind, steps, objective, 1 if kind == "fgsm" else restarts, needs_experts)


def parse_attacks(spec, restarts=1):
    """'default' or a comma-separated list of attack names -> (AttackSpec, ...) in order, duplicates dropped."""
    check_count("`restarts`", restarts)
    items = [item.lower() for item in eval_config.split_items(spec)]
    if not items:
        raise UsageError(f"no attack named in `attacks`={spec!r}; use {ATTACK_HELP}")
    specs = []
    for item in items:
        if item == "default":
            expanded = [parse_attack(n, restarts) for n in DEFAULT_ATTACKS]
            expanded += [dataclasses.replace(parse_attack(n, restarts), only_if_experts=True)
                         for n in DEFAULT_EXPERT_ATTACKS]
        else:
            expanded = [parse_attack(item, restarts)]
        for attack in expanded:
            if all((a.kind, a.steps, a.objective) != (attack.kind, attack.steps, attack.objective) for a in specs):
                specs.append(attack)
    return tuple(specs)


def check_budget(eps, norm):
    """The radius: eps as given, or the norm's usual one (8/255 for L-inf, 0.5 for L2) when eps is None."""
    check_choice("norm", norm, NORMS)
    if eps is None:
        return DEFAULT_EPS[norm]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= 1:
        raise UsageError(f"`eps` is a radius in [0, 1] pixel units (8/255 = 0.0314 for linf, 0.5 for l2), > 0; "
                         f"got {eps!r}")
    return float(eps)


def applicable(specs, has_experts):
    """The attacks that run on a model: those on the experts' outputs only if it has experts."""
    return [a for a in specs if has_experts or not a.needs_experts]


# --- attacking -----------------------------------------------------------------------------------------------


def make_attack(spec, eps, norm, bce_weight, num_targets=autoattack.NUM_TARGETS):
    """The mocse_tf.attacks.Attack of a spec; evaluation keeps, per example, a fooling point if any was visited."""
    settings = dict(eps=eps, norm=norm, steps=spec.steps, objective=spec.objective, bce_weight=bce_weight)
    if spec.kind == "fgsm":
        return attacks.make_attack("fgsm", keep="misclassified", **settings)
    if spec.kind == "pgd":
        return attacks.make_attack("pgd", step_size=PGD_STEP_FRACTION * eps, restarts=spec.restarts,
                                   keep="misclassified", **settings)
    if spec.kind == "apgdt":
        return attacks.make_attack("apgd_t", restarts=spec.restarts, num_targets=num_targets, **settings)
    return attacks.make_attack("apgd", restarts=spec.restarts, keep="misclassified", **settings)


class Predictor:
    """Per-example top-1 correctness of a network on [0, 1] images, compiled once for any batch size; `forward`
    is what the attacks differentiate (inference-mode batch normalisation)."""

    def __init__(self, network):
        self.forward = attacks.model_forward(network)
        self.image_spec = tf.TensorSpec([None, *network.input_shape[1:]], tf.float32)
        self._correct = tf.function(lambda x01, labels: top1_correct(self.forward(x01)["logits"], labels),
                                    input_signature=[self.image_spec, tf.TensorSpec([None], LABEL_DTYPE)],
                                    autograph=False)

    def correct(self, x01, labels):
        """bool [B]: the top-1 answer on x01 is the label."""
        return self._correct(x01, labels).numpy()


def unit_images(pixels):
    """uint8 pixels in [0, 255] as the attacks' float32 images in [0, 1]."""
    return np.asarray(pixels).astype(np.float32) / 255.0


def clean_correct(predictor, images, labels, batch_size):
    """bool [N]: the model's top-1 answer on the clean image (uint8 [N, 32, 32, 3]) is the label."""
    batches = make_pipeline(images, labels, batch_size, training=False, cache=False)
    return np.concatenate([predictor.correct(unit_images(x), y) for x, y in batches])


def robust_correct(predictor, attack, images01, labels, is_clean_correct, batch_size, seed, advance=None):
    """bool [N]: correct clean and at the attack's adversarial point; only clean-correct examples are attacked.

    Every batch draws its own starts: seed is (seed, batch index) for the stateless random ops. `advance(count)`
    is told of each batch done (progress reports).
    """
    # A partial, not a lambda: TF counts traces per code object and would call one trace per attack "retracing".
    generate = tf.function(
        functools.partial(attack.generate, predictor.forward),
        input_signature=[predictor.image_spec, tf.TensorSpec([None], LABEL_DTYPE), tf.TensorSpec([2], tf.int64)],
        autograph=False)
    robust = np.zeros(len(labels), bool)
    attacked = np.flatnonzero(is_clean_correct)
    for batch_index, start in enumerate(range(0, len(attacked), batch_size)):
        chosen = attacked[start:start + batch_size]
        adversarial = generate(tf.constant(images01[chosen]), tf.constant(labels[chosen]),
                               tf.constant([seed, batch_index], tf.int64))
        robust[chosen] = predictor.correct(adversarial, labels[chosen])
        if advance is not None:
            advance(len(chosen))
    return robust


def run_autoattack_spec(predictor, network, images01, labels, *, eps, norm, batch_size, seed, log, model_name,
                        square_queries, num_targets, apgd_steps=APGD_DEFAULT_STEPS):
    """AutoAttack's standard cascade on one network; returns (AutoAttackResult, its stages)."""
    num_classes = int(network.output["logits"].shape[-1])  # standard_stages checks num_targets against it
    stages = autoattack.standard_stages(eps, norm, num_classes=num_classes, experts="expert_logits" in network.output,
                                        square_queries=square_queries, apgd_steps=apgd_steps, num_targets=num_targets)

    def stage_progress(stage_name, count):
        bar = Progress(count, unit="image", label=f"{model_name}: {stage_name}: ")
        if not count:
            bar.finish()
        return bar.add

    result = autoattack.run_autoattack(predictor.forward, images01, labels, stages, eps=eps, norm=norm,
                                       batch_size=batch_size, seed=seed,
                                       log=lambda line: log(f"{model_name}: AutoAttack {line}"),
                                       progress=stage_progress)
    return result, stages


def sanity_checks(predictor, images01, labels, specs, stages, autoattack_result, *, batch_size, bce_weight,
                  log, model_name, is_clean_correct):
    """The report's "sanity" section of one model (see sanity.py); warnings are also passed to `log`. The
    zero-gradient fractions are over the clean-correct images, the ones the attacks attack."""
    repeat_images = images01[:batch_size]
    images01, labels = images01[is_clean_correct], labels[is_clean_correct]
    zero = {}
    for spec in specs:
        if spec.kind != AUTOATTACK:
            zero[spec.name] = sanity.zero_gradient_fraction(predictor.forward, images01, labels, spec.objective,
                                                            targeted=spec.kind == "apgdt", batch_size=batch_size,
                                                            bce_weight=bce_weight)
    for stage in stages:
        if stage.objective is not None:
            zero[f"{AUTOATTACK} {stage.name}"] = sanity.zero_gradient_fraction(
                predictor.forward, images01, labels, stage.objective, targeted=stage.targeted, batch_size=batch_size)
    largest, repeatable = sanity.repeatability(predictor.forward, repeat_images)
    warnings = [sanity.zero_gradient_warning(name, fraction) for name, fraction in zero.items() if fraction > 0]
    if not repeatable:
        warnings.append(sanity.randomness_warning(largest))
    if autoattack_result is not None:
        warnings += autoattack.masking_warnings(autoattack_result, stages)
    for warning in warnings:
        log(f"{model_name}: warning: {warning}")
    return {"zero_gradient_fraction": zero, "repeatable": repeatable, "largest_repeat_difference": largest,
            "warnings": warnings}


def evaluate_network(network, attack_specs, images, labels, *, eps, norm, batch_size=250, seed=0, bce_weight=1.0,
                     log=print, model_name="model", advance=lambda count: None,
                     square_queries=autoattack.SQUARE_QUERIES, num_targets=autoattack.NUM_TARGETS):
    """Clean and robust accuracy of one network on images (uint8 [N, 32, 32, 3]) and labels [N]; the attacks
    work on the images scaled to [0, 1].

    Returns {"clean": accuracy, "robust": {AttackSpec: accuracy}, "worst_case": accuracy, "worst_case_of": [specs],
             "correct": {"clean" | spec: bool [N]}, "stages": {stage name: accuracy after it} (AutoAttack),
             "sanity": see `sanity_checks`} for the attacks applicable to this network.
    """
    predictor = Predictor(network)
    labels = np.asarray(labels, NUMPY_LABEL_DTYPE)
    is_clean_correct = clean_correct(predictor, images, labels, batch_size)
    images01 = unit_images(images)
    advance(len(labels))
    log(f"{model_name}: clean {100 * is_clean_correct.mean():.2f}% ({len(labels)} images)")
    has_experts = "expert_logits" in network.output
    results = {"clean": float(is_clean_correct.mean()), "robust": {}, "correct": {"clean": is_clean_correct}}
    survivors = is_clean_correct.copy()
    chosen = applicable(attack_specs, has_experts)
    results["stages"], stages, autoattack_result = {}, (), None
    for index, spec in enumerate(chosen):
        started = time.perf_counter()
        if spec.kind == AUTOATTACK:
            autoattack_result, stages = run_autoattack_spec(
                predictor, network, images01, labels, eps=eps, norm=norm, batch_size=batch_size,
                seed=seed * 1_000_003 + index, log=log, model_name=model_name, square_queries=square_queries,
                num_targets=num_targets)
            robust = autoattack_result.robust
            results["stages"] = {name: float(after.mean()) for name, after in autoattack_result.robust_after.items()}
            advance(len(labels))
        else:
            attack = make_attack(spec, eps, norm, bce_weight, num_targets)
            robust = robust_correct(predictor, attack, images01, labels, is_clean_correct, batch_size,
                                    seed * 1_000_003 + index, advance)
            advance(len(labels) - int(is_clean_correct.sum()))  # the images already wrong are not attacked
        results["robust"][spec] = float(robust.mean())
        results["correct"][spec] = robust
        survivors &= robust
        log(f"{model_name}: {spec.label(eps, norm)}: {100 * robust.mean():.2f}% "
            f"({time.perf_counter() - started:.1f} s)")
    results["worst_case"] = float(survivors.mean())
    results["worst_case_of"] = chosen
    results["sanity"] = sanity_checks(predictor, images01, labels, chosen, stages, autoattack_result,
                                      batch_size=batch_size, bce_weight=bce_weight, log=log, model_name=model_name,
                                      is_clean_correct=is_clean_correct)
    return results


# --- the bin/eval_adv run ------------------------------------------------------------------------------------


def model_entry(path, results, eps, norm, num_examples, with_worst_case=True):
    """The report entry of one model: clean, and the "adversarial" section {row label: accuracy}, ending with the
    worst case over the attacks run on this model (with_worst_case: the evaluation has several attacks)."""
    adversarial = {}
    for spec, accuracy in results["robust"].items():
        if spec.kind == AUTOATTACK:
            adversarial.update({stage_label(name, eps, norm): value for name, value in results["stages"].items()})
        adversarial[spec.label(eps, norm)] = accuracy
    if with_worst_case:
        adversarial[worst_case_label(eps, norm)] = results["worst_case"]
    entry = {"path": path, "clean": results["clean"], "num_clean_examples": num_examples,
             "num_adversarial_examples": num_examples, "adversarial": adversarial}
    if "sanity" in results:
        entry["sanity"] = results["sanity"]
    return entry


def merge_entry(existing, entry):
    """`entry` merged into an existing model entry: its corruption results and clean accuracy are kept; when that
    clean accuracy was measured on other images, the attacked images' clean accuracy becomes an adversarial row."""
    merged = dict(existing)
    adversarial = {}
    if "clean" in existing and existing.get("num_clean_examples") != entry["num_clean_examples"]:
        adversarial[f"Clean (the {entry['num_adversarial_examples']} attacked images)"] = entry["clean"]
    elif "clean" not in existing:
        merged["clean"] = entry["clean"]
        merged["num_clean_examples"] = entry["num_clean_examples"]
    adversarial.update(entry["adversarial"])
    merged.update(path=existing.get("path", entry["path"]), adversarial=adversarial,
                  num_adversarial_examples=entry["num_adversarial_examples"])
    if "sanity" in entry:
        merged["sanity"] = entry["sanity"]
    return merged


def footnote(dataset, num_examples, restarts, specs):
    """The line under the table that says what the adversarial rows measured."""
    parts = [f"Adversarial rows: accuracy on the first {num_examples} test images of {dataset}; an image counts "
             f"only if it is classified correctly both clean and at the attack's point (only clean-correct images "
             f"are attacked). PGD: steps of eps/4 from a uniform random start; APGD: Croce & Hein (2020)"]
    parts.append(f"; {restarts} random restarts each" if restarts > 1 else "; no restarts")
    parts.append(". Worst case: an image counts only if it survives every attack run on that model.")
    if any(s.needs_experts for s in specs):
        parts.append(" Attacks on the total loss (CE + BCE) and on the experts' BCE run on MoCSE models only.")
    if any(s.kind == AUTOATTACK for s in specs):
        parts.append(" AutoAttack: the standard version (APGD-CE, APGD-T and FAB-T with 9 targets, Square with the "
                     "query budget given), each stage only on the images still robust, + APGD on the experts' CW "
                     "margin and APGD-T on their DLR margin for MoCSE; its rows are the robust accuracy after each "
                     "stage and its worst case.")
    return "".join(parts)


def claim_output(config, resolved_models, merge_path, check_only=False):
    """Checks (check_only, before any work) or claims (before writing) output_dir for this evaluation: a folder
    holding another evaluation (bin/eval_c's included) is refused unless the report merged with is the one it
    holds, or overwrite is set."""
    output_dir = config.output_dir
    if merge_path and os.path.abspath(os.path.dirname(merge_path)) == os.path.abspath(output_dir):
        # Adding rows to the report this folder holds: the folder keeps its owner and stays consistent.
        ownership.check_writable(output_dir)
        if not check_only:
            ownership.remove_stale_temporaries(output_dir)
        return
    owner = eval_config.output_owner(config, "eval_adv", resolved_models)
    way_out = (f"choose another `output_dir`, pass `merge_with`={output_dir} to add the adversarial rows to the "
               f"report it holds, or pass `overwrite` to replace it")
    (ownership.check if check_only else ownership.claim)(output_dir, owner, way_out, config.overwrite)


def run_eval_adv(config, *, command=None, log=print):
    """Everything bin/eval_adv does with an EvalConfig: checks it, loads models and the first num_examples test
    images, runs every attack, writes report.json, accuracy.csv and table1.md into output_dir (merged with the
    report `merge_with` when given). Returns (report dict, {kind: path}, Markdown text)."""
    config = config.checked("eval_adv")
    names, specs, eps, merge_path = config.column_names(), config.attack_specs(), config.radius(), \
        config.merge_report_path()
    dataset, norm, restarts, seed = config.dataset or "cifar10", config.norm, config.restarts, config.seed
    paths = [loading.resolve_model_path(path, need_network=True) for path in config.models]  # checked before loading
    claim_output(config, paths, merge_path, check_only=True)  # before any work
    explicit_expert = [s.name for s in specs if s.needs_experts and not s.only_if_experts]

    merged_report = report_lib.load_report(merge_path) if merge_path else None
    data = load_arrays(dataset, "test", data_dir=config.data_dir, local_dir=config.local_dir,
                       num_examples=config.num_examples or None)
    networks, keras_paths = {}, {}
    for name, path in zip(names, paths):
        classifier = loading.load_model(path, need_network=True)
        loading.check_class_counts({name: classifier}, data.num_classes, f"`dataset`={dataset}")
        networks[name], keras_paths[name] = classifier.network, os.path.abspath(classifier.path)
    if any(s.kind in (AUTOATTACK, "apgdt") for s in specs):
        for name, network in networks.items():
            classes = int(network.output["logits"].shape[-1])
            if config.targets >= classes:
                raise UsageError(f"`targets`={config.targets}: APGD-T and FAB-T attack towards other classes, and "
                                 f"model {name} has {classes} classes; use `targets` <= {classes - 1}")
    if explicit_expert and not any("expert_logits" in n.output for n in networks.values()):
        raise UsageError(f"`attacks` {','.join(explicit_expert)} attack the experts' outputs, and no `models` is a "
                         f"MoCSE network; drop them or add a MoCSE model")

    entries = {}
    # Images done over all models and attacks (the clean pass counts as one): a plain line a minute, never redrawn
    # in place, as the per-attack lines are printed between them.
    progress = Progress(sum(len(data) * (1 + len(applicable(specs, "expert_logits" in n.output)))
                            for n in networks.values()), unit="image", live=False)
    for name, network in networks.items():
        results = evaluate_network(network, specs, data.images, data.labels, eps=eps, norm=norm,
                                   batch_size=config.batch_size, seed=seed, bce_weight=config.bce_weight, log=log,
                                   model_name=name, advance=progress.add, square_queries=config.square_queries,
                                   num_targets=config.targets)
        entries[name] = model_entry(keras_paths[name], results, eps, norm, len(data), with_worst_case=len(specs) > 1)

    settings = {
        "command": command, "models": keras_paths,
        "dataset": dataset, "num_examples": len(data), "eps": eps, "norm": norm, "restarts": restarts,
        "bce_weight": config.bce_weight, "batch_size": config.batch_size, "seed": seed,
        "square_queries": config.square_queries, "targets": config.targets,
        "attacks": [{"name": s.name, "label": s.label(eps, norm), "kind": s.kind, "steps": s.steps,
                     "objective": s.objective, "restarts": s.restarts,
                     "step_size": PGD_STEP_FRACTION * eps if s.kind == "pgd" else (eps if s.kind == "fgsm" else None),
                     "only_models_with_experts": s.needs_experts} for s in specs],
        "worst_case": "per example: robust only if correct clean and under every attack run on that model",
        "footnote": footnote(dataset, len(data), restarts, specs),
        **report_lib.provenance(),
    }
    if merged_report is None:
        report = report_lib.build_report(entries, {"dataset": dataset, "adversarial": settings})
    else:
        existing = merged_report["models"]
        report = report_lib.merge_models(
            merged_report, {name: merge_entry(existing[name], entry) if name in existing else entry
                            for name, entry in entries.items()},
            {**merged_report.get("config", {}), "adversarial": settings})
    claim_output(config, paths, merge_path)
    written = report_lib.write_report(report, config.output_dir)
    return report, written, report_lib.markdown_document(report)
