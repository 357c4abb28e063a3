"""Auto-PGD (APGD, Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks"), natively in TF2: batched, per-example state, one tf.while_loop.

APGD needs no step size: it starts at 2 * eps, moves with momentum 0.75, and at checkpoints halves the step of
each example whose loss rose in at most rho = 75% of the steps since the last checkpoint, or whose best loss did
not improve since then (if its step was not halved then), and restarts that example from its best point. With
objective "dlr" and targets this is APGD-T's inner run; `apgd_targeted` tries the 9 runner-up classes in turn.

Where the paper and the reference code (fra31/auto-attack, autopgd_base.py) differ, this follows the code, whose
numbers RobustBench reports: checkpoints by integer truncation (`apgd_checkpoints`); "at most" rho of the steps
(<=, the paper says <); the rise count compares each iterate with the one visited before it, also across a
restart from the best point; and in the first window the first iterate is compared with 0, not with the start
(the code reads an unwritten, zero entry of its loss history there). Success, also for targeted runs, is any
misclassification.
"""

import tensorflow as tf

from mocse_tf.attacks import geometry, objectives, selection, starts
from mocse_tf.attacks.checks import check_count, check_eps, check_images, check_number
from mocse_tf.attacks.pgd import loss_and_gradient
from mocse_tf.errors import UsageError

MOMENTUM = 0.75
# AutoAttack's APGD-T: the classes ranked 2nd .. 10th by the clean logits.
NUM_TARGETS = 9


def apgd_checkpoints(steps):
    """The iterations after which step sizes are checked, as the reference code computes them: the first window
    is int(0.22 * steps) iterations, each next one int(0.03 * steps) shorter but at least int(0.06 * steps) (each
    of the three at least 1). 100 steps: 22, 41, 57, 70, 80, 87, 93, 99; 50 steps: 11, 21, 30, 38, 45.
    A checkpoint at the last iteration could not change the result, so it is left out.
    """
    check_count("steps", steps)
    # The same float expressions as the reference, so the truncation falls on the same side.
    window = max(int(0.22 * steps), 1)
    shrink = max(int(0.03 * steps), 1)
    shortest = max(int(0.06 * steps), 1)
    points, at = [], window
    while at < steps:
        points.append(at)
        window = max(window - shrink, shortest)
        at += window
    return points


def _window_table(steps):
    """window[k] = w_j - w_{j-1} if iteration k is the checkpoint w_j, else 0; for k = 0 .. steps."""
    window = [0] * (steps + 1)
    last = 0
    for point in apgd_checkpoints(steps):
        window[point] = point - last
        last = point
    return tf.constant(window, tf.float32)


def apgd_run(forward, x, x_start, loss_fn, success_fn, *, eps, steps, norm, keep, rho=0.75, record=False):
    """One APGD run from x_start; returns the worst case (`selection.WorstCase`) over all its iterates.

    record=True also returns the trajectory {"loss", "best_loss", "step"}, each [steps, B]: the loss of iterate
    i + 1, the best loss after it, and the step size in force after its checkpoint test (for tests).
    """
    window_table = _window_table(steps)
    x_start = geometry.project(x_start, x, eps, norm)
    loss, success, grad = loss_and_gradient(forward, x_start, loss_fn, success_fn)
    batch = tf.shape(x)[:1]

    def where(mask, a, b):
        return tf.where(geometry.per_example(mask, a), a, b) if a.shape.rank > 1 else tf.where(mask, a, b)

    state = dict(
        x_cur=x_start, x_prev=x_start, grad=grad,
        # The loss of the previously visited iterate; see the module docstring for the first window's zero.
        loss_prev=tf.zeros_like(loss),
        step=tf.fill(batch, tf.constant(2.0 * eps, tf.float32)),
        best_x=x_start, best_loss=loss, best_grad=grad,
        rises=tf.zeros(batch, tf.float32),  # steps since the last checkpoint whose loss rose
        best_loss_at_check=loss,
        # As in the reference implementation, the "no improvement" test is off at the first checkpoint.
        halved_at_check=tf.ones(batch, tf.bool),
        worst=selection.keep_worse(selection.empty_worst_case(x), selection.WorstCase(x_start, loss, success), keep),
    )
    traces = {name: tf.TensorArray(tf.float32, size=steps) for name in ("loss", "best_loss", "step")}

    def body(iteration, s, traces):
        momentum = tf.where(tf.equal(iteration, 0), 1.0, MOMENTUM)
        step = geometry.per_example(s["step"], x)
        z = geometry.project(s["x_cur"] + step * geometry.ascent_direction(s["grad"], norm), x, eps, norm)
        x_new = geometry.project(
            s["x_cur"] + momentum * (z - s["x_cur"]) + (1.0 - momentum) * (s["x_cur"] - s["x_prev"]), x, eps, norm
        )
        loss_new, success_new, grad_new = loss_and_gradient(forward, x_new, loss_fn, success_fn)
        worst = selection.keep_worse(s["worst"], selection.WorstCase(x_new, loss_new, success_new), keep)
        rises = s["rises"] + tf.cast(loss_new > s["loss_prev"], tf.float32)
        improved = loss_new > s["best_loss"]
        best_x = where(improved, x_new, s["best_x"])
        best_grad = where(improved, grad_new, s["best_grad"])
        best_loss = where(improved, loss_new, s["best_loss"])

        window = tf.gather(window_table, iteration + 1)
        at_check = tf.fill(batch, window > 0)
        oscillating = rises <= rho * window
        stalled = tf.logical_and(tf.logical_not(s["halved_at_check"]), s["best_loss_at_check"] >= best_loss)
        halve = tf.logical_and(at_check, tf.logical_or(oscillating, stalled))
        new_step = where(halve, 0.5 * s["step"], s["step"])
        if record:
            traces = {"loss": traces["loss"].write(iteration, loss_new),
                      "best_loss": traces["best_loss"].write(iteration, best_loss),
                      "step": traces["step"].write(iteration, new_step)}
        return iteration + 1, dict(
            x_cur=where(halve, best_x, x_new),
            x_prev=s["x_cur"],
            grad=where(halve, best_grad, grad_new),
            loss_prev=loss_new,
            step=new_step,
            best_x=best_x, best_loss=best_loss, best_grad=best_grad,
            rises=where(at_check, tf.zeros_like(rises), rises),
            best_loss_at_check=where(at_check, best_loss, s["best_loss_at_check"]),
            halved_at_check=where(at_check, halve, s["halved_at_check"]),
            worst=worst,
        ), traces

    if not record:
        traces = {}
    _, state, traces = tf.while_loop(lambda i, s, t: i < steps, body, (tf.constant(0), state, traces),
                                     maximum_iterations=steps)
    if record:
        return state["worst"], {name: array.stack() for name, array in traces.items()}
    return state["worst"]


def apgd(forward, x01, labels, *, eps, steps=100, norm="linf", objective="ce", targets=None, restarts=1,
         keep="misclassified", seed=0, bce_weight=1.0, rho=0.75):
    """APGD on `objective` (APGD-CE by default, APGD-DLR with "dlr", APGD-T with "dlr" and targets).

    Uses steps + 1 gradient evaluations per restart. Arguments as for `pgd`, without step_size (APGD sets its
    own) and with keep "loss" or "misclassified" (default: robust accuracy counts any fooling iterate; success is
    any misclassification, with or without targets).
    """
    geometry.check_norm(norm)
    objectives.check_objective(objective)
    selection.check_keep(keep, allowed=("loss", "misclassified"))
    check_number("eps", eps, 0.0, strict=False)
    check_count("steps", steps)
    check_count("restarts", restarts)
    check_number("rho", rho, 0.0, strict=True)
    if rho > 1:
        raise UsageError(f"rho is a fraction of steps in (0, 1], got {rho!r}")
    x = check_images(x01)
    seed = starts.as_seed(seed)
    loss_fn = objectives.attack_loss_fn(objective, labels, targets, bce_weight)
    # Any misclassification counts, also with targets (as in the reference's APGD-T).
    success_fn = objectives.attack_success_fn(labels)

    worst = selection.empty_worst_case(x)
    for restart in range(restarts):
        x_start = starts.sphere_start(x, eps, norm, starts.derived_seed(seed, restart))
        run = apgd_run(forward, x, x_start, loss_fn, success_fn, eps=eps, steps=steps, norm=norm, keep=keep, rho=rho)
        worst = selection.keep_worse(worst, run, keep)
    return tf.stop_gradient(worst.x)


def apgd_targeted(forward, x01, labels, *, eps, steps=100, norm="linf", num_targets=NUM_TARGETS, objective="dlr",
                  restarts=1, seed=0, bce_weight=1.0, rho=0.75):
    """APGD-T as AutoAttack runs it: for rank r = 1 .. num_targets, targets are the classes ranked r + 1 by the
    clean logits, and a targeted APGD run (targeted DLR by default) attacks only the examples not yet
    misclassified. Returns [0, 1] images: the first misclassified point found, else the clean image.

    Graph-safe: the rank loop is a tf.while_loop whose body gathers the still-robust examples (a dynamic batch).
    objective: "dlr" (the reference's targeted DLR) or a MoCSE margin objective ("margin_dlr", "margin_cw").
    """
    geometry.check_norm(norm)
    objectives.check_objective(objective)
    check_eps(eps)
    check_count("steps", steps)
    check_count("restarts", restarts)
    check_count("num_targets", num_targets)
    x = check_images(x01)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int64)
    seed = starts.as_seed(seed)
    clean_logits = tf.cast(forward(x)["logits"], tf.float32)
    num_classes = clean_logits.shape[-1]
    if num_classes is not None and num_targets >= num_classes:
        raise UsageError(f"num_targets={num_targets} targets need more than {num_targets} classes, the logits have "
                         f"{num_classes}; use num_targets <= {num_classes - 1}")
    ranking = tf.math.top_k(clean_logits, k=num_targets + 1).indices  # [B, num_targets + 1], best first
    success_fn = objectives.attack_success_fn(labels)
    robust = tf.logical_not(success_fn({"logits": clean_logits}))

    def body(rank, x_adv, robust):
        chosen = tf.where(robust)[:, 0]
        x_sub, y_sub = tf.gather(x, chosen), tf.gather(labels, chosen)
        targets = tf.cast(tf.gather(tf.gather(ranking, chosen), rank, axis=1), tf.int64)
        loss_fn = objectives.attack_loss_fn(objective, y_sub, targets, bce_weight)
        worst = selection.empty_worst_case(x_sub)
        for restart in range(restarts):
            run_seed = starts.derived_seed(starts.derived_seed(seed, rank), restart)
            x_start = starts.sphere_start(x_sub, eps, norm, run_seed)
            run = apgd_run(forward, x_sub, x_start, loss_fn, objectives.attack_success_fn(y_sub), eps=eps,
                           steps=steps, norm=norm, keep="misclassified", rho=rho)
            worst = selection.keep_worse(worst, run, "misclassified")
        fooled = tf.boolean_mask(chosen, worst.success)
        x_adv = tf.tensor_scatter_nd_update(x_adv, fooled[:, None], tf.boolean_mask(worst.x, worst.success))
        robust = tf.tensor_scatter_nd_update(robust, fooled[:, None], tf.zeros_like(fooled, tf.bool))
        return rank + 1, x_adv, robust

    _, x_adv, _ = tf.while_loop(lambda rank, x_adv, robust: tf.logical_and(rank <= num_targets,
                                                                          tf.reduce_any(robust)),
                                body, (tf.constant(1), x, robust), maximum_iterations=num_targets)
    return tf.stop_gradient(x_adv)
