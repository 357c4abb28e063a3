"""FGSM and PGD (Madry et al. 2018) in L-inf and L2, batched, in graph or eager mode, on images in [0, 1].

Each step moves along the steepest-ascent direction of the attack loss and projects onto the epsilon ball and
onto [0, 1]. The step loop is a tf.while_loop (or unrolled), never a Python loop over a tensor, so it also runs
inside a Keras 3 train_step, which is traced without AutoGraph.
"""

import tensorflow as tf

from mocse_tf.attacks import geometry, objectives, selection, starts
from mocse_tf.attacks.checks import check_count, check_images, check_number
from mocse_tf.errors import UsageError


def loss_and_gradient(forward, x_adv, loss_fn, success_fn):
    """The attack loss [B], success [B] and gradient of the summed loss w.r.t. x_adv at x_adv.

    Summing per-example losses gives each example the gradient of its own loss (with inference-mode batch
    normalisation; with batch statistics, examples also act on each other's through the batch moments).
    """
    with tf.GradientTape() as tape:
        tape.watch(x_adv)
        outputs = forward(x_adv)
        loss = tf.cast(loss_fn(outputs), tf.float32)
        total = tf.reduce_sum(loss)
    grad = tape.gradient(total, x_adv)
    success = success_fn(outputs) if success_fn is not None else None
    return loss, success, tf.stop_gradient(grad)


def evaluate(forward, x_adv, loss_fn, success_fn):
    """The attack loss [B] and success [B] at x_adv, forward pass only."""
    outputs = forward(x_adv)
    return tf.cast(loss_fn(outputs), tf.float32), success_fn(outputs)


def repeat(body, count, state, unroll=False):
    """Applies `body(state) -> state` `count` times: a tf.while_loop, or a Python loop when unroll=True."""
    if unroll:
        for _ in range(count):
            state = body(state)
        return state
    step = lambda i, s: (i + 1, body(s))  # noqa: E731
    _, state = tf.while_loop(lambda i, s: i < count, step, (tf.constant(0), state), maximum_iterations=count)
    return state


def pgd_run(forward, x, x_start, loss_fn, success_fn, *, eps, step_size, steps, norm, keep, unroll=False):
    """One PGD run from x_start: the final iterate (keep="last") or the worst case over all iterates."""
    x_start = geometry.project(x_start, x, eps, norm)

    def step(x_adv, grad):
        return geometry.project(x_adv + step_size * geometry.ascent_direction(grad, norm), x, eps, norm)

    if keep == "last":
        def body(x_adv):
            _, _, grad = loss_and_gradient(forward, x_adv, loss_fn, None)
            return step(x_adv, grad)

        return selection.WorstCase(repeat(body, steps, x_start, unroll), None, None)

    def tracked_body(state):
        x_adv, worst = state
        loss, success, grad = loss_and_gradient(forward, x_adv, loss_fn, success_fn)
        worst = selection.keep_worse(worst, selection.WorstCase(x_adv, loss, success), keep)
        return step(x_adv, grad), worst

    x_adv, worst = repeat(tracked_body, steps, (x_start, selection.empty_worst_case(x)), unroll)
    loss, success = evaluate(forward, x_adv, loss_fn, success_fn)
    return selection.keep_worse(worst, selection.WorstCase(x_adv, loss, success), keep)


def pgd(forward, x01, labels, *, eps, step_size, steps, norm="linf", objective="ce", targets=None,
        random_start=True, restarts=1, keep="misclassified", seed=0, bce_weight=1.0, unroll=False):
    """Projected gradient ascent on the attack loss; returns adversarial images in [0, 1] (no gradient).

    forward: `forward(x01) -> {"logits": [B, N], ...}` (see `model_forward`). x01: float images [B, ...] in
    [0, 1]. labels: true labels [B]. targets: target labels [B] for a targeted attack, else None.
    norm: "linf" or "l2". objective: one of OBJECTIVES ("ce", "mocse_total", "expert_bce", "dlr").
    random_start: start uniformly in the epsilon ball (L2: see `starts.uniform_l2_start`), else at x01.
    restarts: independent runs; restart r draws its start with `derived_seed(seed, r)`, so run 0 of any number
    of restarts is the single run. keep: which visited point each example returns (see `selection`);
    "last" needs restarts=1. seed: int, pair, or int tensor [2]. unroll: a Python loop instead of
    tf.while_loop (a larger graph).
    """
    geometry.check_norm(norm)
    objectives.check_objective(objective)
    selection.check_keep(keep)
    check_number("eps", eps, 0.0, strict=False)
    check_number("step_size", step_size, 0.0, strict=True)
    check_count("steps", steps)
    check_count("restarts", restarts)
    if keep == "last" and restarts > 1:
        raise UsageError(
            f"keep='last' returns one run's final iterate, so it cannot combine restarts={restarts}; "
            "use keep='loss' or keep='misclassified'"
        )
    x = check_images(x01)
    seed = starts.as_seed(seed)
    loss_fn = objectives.attack_loss_fn(objective, labels, targets, bce_weight)
    success_fn = objectives.attack_success_fn(labels, targets)

    worst = selection.empty_worst_case(x)
    for restart in range(restarts):
        x_start = starts.uniform_start(x, eps, norm, starts.derived_seed(seed, restart)) if random_start else x
        run = pgd_run(forward, x, x_start, loss_fn, success_fn, eps=eps, step_size=step_size, steps=steps,
                      norm=norm, keep=keep, unroll=unroll)
        if keep == "last":
            return tf.stop_gradient(run.x)
        worst = selection.keep_worse(worst, run, keep)
    return tf.stop_gradient(worst.x)


def fgsm(forward, x01, labels, *, eps, norm="linf", step_size=None, random_start=False, objective="ce",
         targets=None, keep="last", seed=0, bce_weight=1.0):
    """One signed-gradient (L-inf) or normalised-gradient (L2) step, projected: FGSM (Goodfellow et al.).

    With random_start=True this is the step of fast adversarial training (Wong et al. 2020); its default
    step_size is then 1.25 * eps (10/255 at eps 8/255), else eps.
    """
    if step_size is None:
        step_size = 1.25 * eps if random_start else eps
    return pgd(forward, x01, labels, eps=eps, step_size=step_size, steps=1, norm=norm, objective=objective,
               targets=targets, random_start=random_start, restarts=1, keep=keep, seed=seed,
               bce_weight=bce_weight)
