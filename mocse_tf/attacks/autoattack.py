"""AutoAttack (Croce & Hein 2020), "standard" version, as the reference code (fra31/auto-attack) runs it:
APGD-CE (100 steps, 1 restart), APGD-T (9 targets, 100 steps), FAB-T (9 targets) and Square (5000 queries), in
that order, each run only on the examples every earlier stage left correctly classified; an example is robust only
if it survives all of them (the per-example worst case).

For MoCSE networks (outputs with "expert_logits") `standard_stages(..., experts=True)` adds two adaptive stages on
the experts' margins m_k = z_true_k - z_false_k, which stay informative where probability-like aggregates saturate:
APGD on the untargeted CW margin loss and APGD-T on the targeted DLR of the margins.

A stage is a `Stage(name, build)`: `build(forward, image_shape)` returns `attack(x01, labels, seed) -> x_adv` on
NumPy arrays (compiled once for any batch size), so any attack with that shape plugs in. The cascade checks every
returned point (inside the eps ball and [0, 1]) before it counts as a success.

Built stages are kept with the `forward` they were built for (per stage and image shape), and the stage factories
below return the same `Stage` for the same settings, so repeated `run_autoattack` calls on one forward reuse the
traced graphs instead of tracing every stage again.
"""

import dataclasses
import functools
import time
from typing import Callable

import numpy as np
import tensorflow as tf

from mocse_tf.attacks import geometry
from mocse_tf.attacks.apgd import NUM_TARGETS, apgd, apgd_targeted
from mocse_tf.attacks.checks import check_count, check_eps
from mocse_tf.errors import UsageError
from mocse_tf.labels import LABEL_DTYPE, NUMPY_LABEL_DTYPE

APGD_STEPS = 100
FAB_STEPS = 100
SQUARE_QUERIES = 5000
# A returned point may exceed eps by float32 rounding only.
_BALL_TOLERANCE = 1e-5


@dataclasses.dataclass(frozen=True)
class Stage:
    """One attack of the cascade. name: its report name ("APGD-CE"). build(forward, image_shape) ->
    attack(x01, labels, seed): NumPy float32 [B, H, W, C] in [0, 1], int64 [B], int seed -> NumPy adversarial
    images. objective: the loss whose input gradient the stage follows (None: gradient-free), and targeted: whether
    it is the targeted form (for the zero-gradient check). second_opinion: a stage whose successes after the APGD
    stages suggest gradient masking (FAB-T, Square)."""

    name: str
    build: Callable
    objective: str | None = "ce"
    targeted: bool = False
    second_opinion: bool = False


def _reused(factory):
    """`factory` returning the same object for the same (hashable) arguments: equal settings give the identical
    Stage, whose built graphs `built_stage` then finds again."""
    remembered = functools.lru_cache(maxsize=None)(factory)

    @functools.wraps(factory)
    def make(*args, **kwargs):
        try:
            return remembered(*args, **kwargs)
        except TypeError:  # an unhashable argument: build a fresh one (or raise the factory's own TypeError)
            return factory(*args, **kwargs)

    return make


def _kept_with(forward, key, build):
    """build(), called once per `forward` and `key`: the result is kept on the function itself, so it lives exactly
    as long as `forward` does (rebuilt on every call for a callable that takes no attributes)."""
    graphs = getattr(forward, "_autoattack_graphs", None)
    if graphs is None:
        graphs = {}
        try:
            forward._autoattack_graphs = graphs
        except AttributeError:
            pass
    if key not in graphs:
        graphs[key] = build()
    return graphs[key]


def built_stage(stage, forward, image_shape):
    """`stage.build(forward, image_shape)`, built (and traced) once per forward, stage and image shape."""
    image_shape = tuple(image_shape)
    return _kept_with(forward, (stage, image_shape), lambda: stage.build(forward, image_shape))


def _logits_graph(forward, image_shape):
    """forward(x)["logits"] compiled for any batch size, once per forward and image shape."""
    return _kept_with(forward, ("logits", tuple(image_shape)), lambda: tf.function(
        lambda x: forward(x)["logits"], autograph=False,
        input_signature=[tf.TensorSpec([None, *image_shape], tf.float32)]))


def _compiled(fn, image_shape):
    """fn(x01, labels, seed[2]) as a tf.function for any batch size, called on NumPy arrays."""
    graph = tf.function(fn, input_signature=[tf.TensorSpec([None, *image_shape], tf.float32),
                                             tf.TensorSpec([None], LABEL_DTYPE), tf.TensorSpec([2], tf.int64)],
                        autograph=False)

    def attack(x01, labels, seed):
        return graph(tf.constant(x01, tf.float32), tf.constant(labels, LABEL_DTYPE),
                     tf.constant([seed, 0], tf.int64)).numpy()

    return attack


@_reused
def apgd_stage(eps, norm, *, objective="ce", steps=APGD_STEPS, restarts=1, name=None):
    """Untargeted APGD on `objective` (APGD-CE by default)."""
    def build(forward, image_shape):
        return _compiled(lambda x, y, seed: apgd(forward, x, y, eps=eps, steps=steps, norm=norm, objective=objective,
                                                 restarts=restarts, seed=seed), image_shape)
    return Stage(name or f"APGD-{objective.upper().replace('_', '-')}", build, objective=objective)


@_reused
def apgd_t_stage(eps, norm, *, objective="dlr", steps=APGD_STEPS, num_targets=NUM_TARGETS, name=None):
    """APGD-T: targeted APGD towards the classes ranked 2 .. num_targets + 1 by the clean logits."""
    def build(forward, image_shape):
        return _compiled(lambda x, y, seed: apgd_targeted(forward, x, y, eps=eps, steps=steps, norm=norm,
                                                          num_targets=num_targets, objective=objective, seed=seed),
                         image_shape)
    suffix = "" if objective == "dlr" else "-" + objective.upper().replace("_", "-")
    return Stage(name or f"APGD-T{suffix}", build, objective=objective, targeted=True)


@_reused
def square_stage(eps, norm, *, queries=SQUARE_QUERIES, p_init=0.8, rescale_schedule=False):
    """Square (gradient-free); by default with the p schedule not rescaled to the budget, as AutoAttack builds it
    (rescale_schedule=True: the SquareAttack class default, and ART's only schedule)."""
    def build(forward, image_shape):
        from mocse_tf.attacks.square import square_attack

        return _compiled(lambda x, y, seed: square_attack(forward, x, y, eps=eps, norm=norm, queries=queries,
                                                          p_init=p_init, seed=seed,
                                                          rescale_schedule=rescale_schedule),
                         image_shape)
    return Stage("Square", build, objective=None, second_opinion=True)


@_reused
def fab_t_stage(eps, norm, *, steps=FAB_STEPS, num_targets=NUM_TARGETS):
    """FAB-T: FAB towards each of the classes ranked 2 .. num_targets + 1 by the clean logits, one target per call,
    each call only on the examples no earlier target fooled (as the reference's FAB-T loop)."""
    def build(forward, image_shape):
        from mocse_tf.attacks.fab import fab_attack

        one_target = tf.function(
            lambda x, y, t, seed: fab_attack(forward, x, y, eps=eps, norm=norm, steps=steps, targets=t, seed=seed),
            input_signature=[tf.TensorSpec([None, *image_shape], tf.float32), tf.TensorSpec([None], LABEL_DTYPE),
                             tf.TensorSpec([None], LABEL_DTYPE), tf.TensorSpec([2], tf.int64)], autograph=False)
        logits_of = _logits_graph(forward, image_shape)

        def attack(x01, labels, seed):
            logits = logits_of(tf.constant(x01)).numpy()
            if num_targets >= logits.shape[1]:
                raise UsageError(f"FAB-T with {num_targets} targets needs more than {num_targets} classes, the "
                                 f"logits have {logits.shape[1]}")
            ranking = np.argsort(-logits, axis=1, kind="stable")
            x_adv = np.array(x01, copy=True)
            robust = np.argmax(logits, axis=1) == labels
            for rank in range(1, num_targets + 1):
                chosen = np.flatnonzero(robust)
                if not len(chosen):
                    break
                found = one_target(tf.constant(x01[chosen]), tf.constant(labels[chosen]),
                                   tf.constant(ranking[chosen, rank], LABEL_DTYPE),
                                   tf.constant([seed, rank], tf.int64)).numpy()
                fooled = np.argmax(logits_of(tf.constant(found)).numpy(), axis=1) != labels[chosen]
                fooled &= _inside(found, x01[chosen], eps, norm)
                x_adv[chosen[fooled]] = found[fooled]
                robust[chosen[fooled]] = False
            return x_adv

        return attack
    # FAB follows the gradients of logit differences, which the targeted CW margin z_t - z_y measures.
    return Stage("FAB-T", build, objective="cw", targeted=True, second_opinion=True)


@_reused
def margin_stages(eps, norm, *, steps=APGD_STEPS, num_targets=NUM_TARGETS):
    """The MoCSE-adaptive stages: APGD on the experts' CW margin loss and APGD-T on the targeted DLR of the
    margins."""
    return (apgd_stage(eps, norm, objective="margin_cw", steps=steps, name="APGD-MARGIN-CW"),
            apgd_t_stage(eps, norm, objective="margin_dlr", steps=steps, num_targets=num_targets,
                         name="APGD-T-MARGIN-DLR"))


def standard_stages(eps, norm, *, num_classes, experts=False, square_queries=SQUARE_QUERIES, apgd_steps=APGD_STEPS,
                    fab_steps=FAB_STEPS, num_targets=None):
    """AutoAttack's standard version: APGD-CE, APGD-T, FAB-T, Square (+ the margin stages for MoCSE).

    num_targets: target classes of APGD-T and FAB-T (default 9, or num_classes - 1 with fewer than 10 classes); the
    targeted DLR loss needs at least 4 classes."""
    geometry.check_norm(norm)
    check_eps(eps)
    check_count("square_queries", square_queries)
    check_count("num_classes", num_classes, minimum=4)
    if num_targets is None:
        num_targets = min(NUM_TARGETS, num_classes - 1)
    check_count("num_targets", num_targets)
    if num_targets >= num_classes:
        raise UsageError(f"num_targets={num_targets}: targets must be other classes, and there are only "
                         f"{num_classes - 1} (num_classes={num_classes}); use num_targets <= {num_classes - 1}")
    targets = num_targets
    stages = [apgd_stage(eps, norm, steps=apgd_steps), apgd_t_stage(eps, norm, steps=apgd_steps,
                                                                      num_targets=targets),
              fab_t_stage(eps, norm, steps=fab_steps, num_targets=targets),
              square_stage(eps, norm, queries=square_queries)]
    if experts:
        stages += margin_stages(eps, norm, steps=apgd_steps, num_targets=targets)
    return tuple(stages)


def _inside(x_adv, x, eps, norm):
    """bool [B]: x_adv lies in [0, 1] and within eps of x (up to float32 rounding)."""
    delta = (x_adv - x).reshape(len(x), -1).astype(np.float64)
    size = np.abs(delta).max(axis=1) if norm == "linf" else np.sqrt((delta ** 2).sum(axis=1))
    in_range = (x_adv.reshape(len(x), -1).min(axis=1) >= 0) & (x_adv.reshape(len(x), -1).max(axis=1) <= 1)
    return in_range & (size <= eps * (1 + _BALL_TOLERANCE) + _BALL_TOLERANCE)


@dataclasses.dataclass
class AutoAttackResult:
    """clean_correct bool [N]; robust_after {stage name: bool [N]}, cumulative (robust after this and every
    earlier stage); fooled_by {stage name: int}: examples that stage fooled first; x_adv [N, ...]: each example's
    fooling point, or the clean image if none was found; seconds {stage name: float}; rejected {stage name: int}:
    returned points outside the ball or [0, 1], not counted."""

    clean_correct: np.ndarray
    robust_after: dict
    fooled_by: dict
    x_adv: np.ndarray
    seconds: dict
    rejected: dict

    @property
    def robust(self):
        """bool [N]: correct clean and under every stage (the worst case)."""
        return list(self.robust_after.values())[-1] if self.robust_after else self.clean_correct


def run_autoattack(forward, images01, labels, stages, *, eps, norm, batch_size=250, seed=0, log=print,
                   progress=None):
    """Runs `stages` in order on images01 (float32 [N, H, W, C] in [0, 1]) with labels [N], each stage only on the
    examples still robust; returns an `AutoAttackResult`.

    forward: `forward(x01) -> {"logits", ...}` (e.g. `model_forward(network)`, float32 whatever the policy).
    progress(stage name, number of examples) -> advance(count), called for each stage (a progress bar); log
    receives one line per stage with the robust accuracy after it. Graphs are traced on the first call only: later
    calls with the same forward, equal stages and the same image shape reuse them (see `built_stage`).
    """
    geometry.check_norm(norm)
    check_eps(eps)
    check_count("batch_size", batch_size)
    images01 = np.asarray(images01, np.float32)
    labels = np.asarray(labels, NUMPY_LABEL_DTYPE).reshape(-1)
    if len(images01) != len(labels):
        raise UsageError(f"{len(images01)} images but {len(labels)} labels")
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise UsageError(f"stage names must differ, got {names}")
    image_shape = images01.shape[1:]
    logits_of = _logits_graph(forward, image_shape)

    def predict(x):
        return np.concatenate([np.argmax(logits_of(tf.constant(x[i:i + batch_size])).numpy(), axis=1)
                               for i in range(0, len(x), batch_size)]) if len(x) else np.zeros(0, np.int64)

    clean_correct = predict(images01) == labels
    robust = clean_correct.copy()
    x_adv = images01.copy()
    result = AutoAttackResult(clean_correct, {}, {}, x_adv, {}, {})
    log(f"clean: {100 * clean_correct.mean():.2f}% ({len(labels)} images)")
    for index, stage in enumerate(stages):
        started = time.perf_counter()
        attack = built_stage(stage, forward, image_shape)
        chosen_all = np.flatnonzero(robust)
        advance = progress(stage.name, len(chosen_all)) if progress is not None else None
        fooled_count = rejected = 0
        for batch_index, start in enumerate(range(0, len(chosen_all), batch_size)):
            chosen = chosen_all[start:start + batch_size]
            found = np.asarray(attack(images01[chosen], labels[chosen], seed * 1_000_003 + index * 10_007
                                      + batch_index), np.float32)
            fooled = predict(found) != labels[chosen]
            inside = _inside(found, images01[chosen], eps, norm)
            rejected += int(np.sum(fooled & ~inside))
            fooled &= inside
            x_adv[chosen[fooled]] = found[fooled]
            robust[chosen[fooled]] = False
            fooled_count += int(fooled.sum())
            if advance is not None:
                advance(len(chosen))
        result.robust_after[stage.name] = robust.copy()
        result.fooled_by[stage.name] = fooled_count
        result.rejected[stage.name] = rejected
        result.seconds[stage.name] = time.perf_counter() - started
        log(f"robust accuracy after {stage.name}: {100 * robust.mean():.2f}% ({fooled_count} more fooled, "
            f"{result.seconds[stage.name]:.1f} s)")
    return result


def masking_warnings(result, stages):
    """Warnings (strings) when a stage that does not follow the gradient (Square) or FAB-T fooled examples that the
    APGD stages before it had missed: a sign of gradient masking (obfuscated gradients)."""
    warnings = []
    total = len(result.clean_correct)
    for stage in stages:
        count = result.fooled_by.get(stage.name, 0)
        if stage.second_opinion and count:
            warnings.append(
                f"{stage.name} found adversarial examples for {count} of {total} images ({100 * count / total:.2f} "
                f"points) that the gradient attacks before it missed: gradient masking suspected; do not trust the "
                f"gradient-based rows alone (consider more Square queries, restarts, or an adaptive attack)")
        if result.rejected.get(stage.name):
            warnings.append(f"{stage.name} returned {result.rejected[stage.name]} points outside the eps ball or "
                            f"[0, 1]; they were not counted")
    return warnings
