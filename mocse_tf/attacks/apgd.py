"""Auto-PGD (APGD, Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks"), natively in TF2: batched, per-example state, one tf.while_loop.

APGD needs no step size: it starts at 2 * eps, moves with momentum 0.75, and at checkpoints halves the step of
each example whose loss rose in fewer than rho = 75% of the steps since the last checkpoint, or whose best
loss did not improve since then (if its step was not halved then), and restarts that example from its best
point. With objective "dlr" and targets this is APGD-T (targeted DLR).
"""

import tensorflow as tf

from mocse_tf.attacks import geometry, objectives, selection, starts
from mocse_tf.attacks.checks import check_count, check_images, check_number
from mocse_tf.attacks.pgd import loss_and_gradient
from mocse_tf.errors import UsageError

MOMENTUM = 0.75


def apgd_checkpoints(steps):
    """The iterations w_j = ceil(p_j * steps) after which step sizes are checked, for w_j in 1 .. steps - 1.

    p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06). Computed in exact hundredths: in
    floating point 0.22 * 100 is 22.000000000000004 and its ceiling would be 23. A checkpoint at the last
    iteration or later could not change the result, so it is left out.
    """
    check_count("steps", steps)
    points = []
    previous, current = 0, 22  # p_j in hundredths
    while True:
        iteration = -(-current * steps // 100)  # ceil(current * steps / 100) in integers
        if iteration >= steps:
            return points
        if iteration >= 1 and (not points or iteration > points[-1]):
            points.append(iteration)
        previous, current = current, current + max(current - previous - 3, 6)


def _window_table(steps):
    """window[k] = w_j - w_{j-1} if iteration k is the checkpoint w_j, else 0; for k = 0 .. steps."""
    window = [0] * (steps + 1)
    last = 0
    for point in apgd_checkpoints(steps):
        window[point] = point - last
        last = point
    return tf.constant(window, tf.float32)


def apgd_run(forward, x, x_start, loss_fn, success_fn, *, eps, steps, norm, keep, rho=0.75):
    """One APGD run from x_start; returns the worst case (`selection.WorstCase`) over all its iterates."""
    window_table = _window_table(steps)
    x_start = geometry.project(x_start, x, eps, norm)
    loss, success, grad = loss_and_gradient(forward, x_start, loss_fn, success_fn)
    batch = tf.shape(x)[:1]

    def where(mask, a, b):
        return tf.where(geometry.per_example(mask, a), a, b) if a.shape.rank > 1 else tf.where(mask, a, b)

    state = dict(
        x_cur=x_start, x_prev=x_start, grad=grad, loss_cur=loss,
        step=tf.fill(batch, tf.constant(2.0 * eps, tf.float32)),
        best_x=x_start, best_loss=loss, best_grad=grad,
        rises=tf.zeros(batch, tf.float32),  # steps since the last checkpoint whose loss rose
        best_loss_at_check=loss,
        # As in the reference implementation, the "no improvement" test is off at the first checkpoint.
        halved_at_check=tf.ones(batch, tf.bool),
        worst=selection.keep_worse(selection.empty_worst_case(x), selection.WorstCase(x_start, loss, success), keep),
    )

    def body(iteration, s):
        momentum = tf.where(tf.equal(iteration, 0), 1.0, MOMENTUM)
        step = geometry.per_example(s["step"], x)
        z = geometry.project(s["x_cur"] + step * geometry.ascent_direction(s["grad"], norm), x, eps, norm)
        x_new = geometry.project(
            s["x_cur"] + momentum * (z - s["x_cur"]) + (1.0 - momentum) * (s["x_cur"] - s["x_prev"]), x, eps, norm
        )
        loss_new, success_new, grad_new = loss_and_gradient(forward, x_new, loss_fn, success_fn)
        worst = selection.keep_worse(s["worst"], selection.WorstCase(x_new, loss_new, success_new), keep)
        rises = s["rises"] + tf.cast(loss_new > s["loss_cur"], tf.float32)
        improved = loss_new > s["best_loss"]
        best_x = where(improved, x_new, s["best_x"])
        best_grad = where(improved, grad_new, s["best_grad"])
        best_loss = where(improved, loss_new, s["best_loss"])

        window = tf.gather(window_table, iteration + 1)
        at_check = tf.fill(batch, window > 0)
        oscillating = rises < rho * window
        stalled = tf.logical_and(tf.logical_not(s["halved_at_check"]), s["best_loss_at_check"] >= best_loss)
        halve = tf.logical_and(at_check, tf.logical_or(oscillating, stalled))
        return iteration + 1, dict(
            x_cur=where(halve, best_x, x_new),
            x_prev=s["x_cur"],
            grad=where(halve, best_grad, grad_new),
            loss_cur=where(halve, best_loss, loss_new),
            step=where(halve, 0.5 * s["step"], s["step"]),
            best_x=best_x, best_loss=best_loss, best_grad=best_grad,
            rises=where(at_check, tf.zeros_like(rises), rises),
            best_loss_at_check=where(at_check, best_loss, s["best_loss_at_check"]),
            halved_at_check=where(at_check, halve, s["halved_at_check"]),
            worst=worst,
        )

    _, state = tf.while_loop(lambda i, s: i < steps, body, (tf.constant(0), state), maximum_iterations=steps)
    return state["worst"]


def apgd(forward, x01, labels, *, eps, steps=100, norm="linf", objective="ce", targets=None, restarts=1,
         keep="misclassified", seed=0, bce_weight=1.0, rho=0.75):
    """APGD on `objective` (APGD-CE by default, APGD-DLR with "dlr", APGD-T with "dlr" and targets).

    Uses steps + 1 gradient evaluations per restart. Arguments as for `pgd`, without step_size (APGD sets its
    own) and with keep "loss" or "misclassified" (default: robust accuracy counts any fooling iterate).
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
    success_fn = objectives.attack_success_fn(labels, targets)

    worst = selection.empty_worst_case(x)
    for restart in range(restarts):
        x_start = starts.sphere_start(x, eps, norm, starts.derived_seed(seed, restart))
        run = apgd_run(forward, x, x_start, loss_fn, success_fn, eps=eps, steps=steps, norm=norm, keep=keep, rho=rho)
        worst = selection.keep_worse(worst, run, keep)
    return tf.stop_gradient(worst.x)
