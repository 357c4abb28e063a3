"""FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein 2020, "Minimally distorted adversarial examples
with a fast adaptive boundary attack"), L-inf and L2, as AutoAttack runs it, and untargeted FAB: batched, seeded,
graph-safe.

FAB looks for the smallest perturbation that changes the prediction. Each step linearises the decision boundary
between the true class y and the target t at the current point, projects both the current point and the original
image onto that hyperplane intersected with the [0, 1] box (the exact minimal-norm projections), and moves to a
mix of the two projections, biased towards the original image the farther the current point is from the
boundary, with a small overshoot eta. Once a step lands on a misclassified point it is recorded if it is the
closest yet, and the iterate steps back towards the original by the factor beta. The attack returns, for each
example, its closest misclassified point if that lies within eps, else the original image.

AutoAttack's FAB-T (standard version) runs 100 steps and 1 restart for each of the 9 classes with the highest
clean logits after the true one: call `fab_attack` once per `objectives.ranked_targets(clean_logits, rank)`,
rank 1 .. 9, on the examples still robust.
"""

import numpy as np
import tensorflow as tf

from mocse_tf.attacks import geometry, starts
from mocse_tf.attacks.checks import check_count, check_eps, check_images, check_number, check_targets
from mocse_tf.errors import UsageError

# A hyperplane coefficient smaller than this does not move its L2 coordinate (the reference's threshold).
_L2_TINY_WEIGHT = 1e-8
# The reference's floor on the two projections' norms, so the bias alpha is defined when both are zero.
_TINY_STEP = 1e-8
# The reference's "no adversarial point yet" distance.
_NOT_FOUND = 1e10


# Bisection steps of `_water_level`: each halves the logarithm of the bracket's ratio, from at most about 1e12
# (the L2 breakpoints room / |w_i| reach 1 / 1e-8) to below 1 + 1e-8.
_BISECTIONS = 32


def _water_level(weights, breakpoints, target):
    """Per row, the smallest level L >= 0 with G(L) = sum_i weights_i * min(L, breakpoints_i) = target; +inf where
    even G(inf) = sum_i weights_i * breakpoints_i falls short. weights, breakpoints [N, D] >= 0; target [N] >= 0.

    G is piecewise linear, concave and non-decreasing, with a kink at every breakpoint. L0 = target / sum(weights)
    lies at or below the root (G(L) <= L * sum(weights)) and the largest breakpoint at or above it. Geometric
    bisection narrows that bracket; a last Newton step from its lower end solves the linear piece there exactly.
    (Sorting the breakpoints, as the reference does, costs more than the network's forward and backward pass
    on a CPU.)
    """
    def level_sum(level):
        return tf.reduce_sum(weights * tf.minimum(level[:, None], breakpoints), axis=1)

    total = tf.reduce_sum(weights, axis=1)
    high = tf.reduce_max(tf.where(weights > 0, breakpoints, 0.0), axis=1)
    low = tf.minimum(target / tf.where(total > 0, total, 1.0), high)
    for _ in range(_BISECTIONS):
        middle = tf.sqrt(low * high)
        below = level_sum(middle) < target
        low, high = tf.where(below, middle, low), tf.where(below, high, middle)
    full = breakpoints <= low[:, None]
    filled = tf.reduce_sum(tf.where(full, weights * breakpoints, 0.0), axis=1)
    rising = tf.reduce_sum(tf.where(full, 0.0, weights), axis=1)
    level = tf.where(rising > 0, (target - filled) / tf.where(rising > 0, rising, 1.0), low)
    level = tf.clip_by_value(level, low, high)
    level = tf.where(target > 0, level, 0.0)
    reach = tf.reduce_sum(weights * breakpoints, axis=1)
    return tf.where(reach < target, tf.constant(np.inf, level.dtype), level)


def hyperplane_box_projection(points, w, b, norm):
    """The displacement d of least norm (L-inf or L2) that puts each row of `points` on the hyperplane
    <w, p + d> = b and keeps p + d in [0, 1]; where the box cannot reach the hyperplane, the box corner
    closest to it. points, w [N, D] (points in [0, 1]); b [N].

    Moving coordinate i towards the bound that lowers the gap <w, p> - b, by m_i <= room_i: for L-inf the
    optimum moves every coordinate by min(L, room_i) for the smallest L that closes the gap; for L2 (KKT) by
    |w_i| * min(L, room_i / |w_i|). Both are one `_water_level`.
    """
    gap = tf.reduce_sum(w * points, axis=1) - b
    w = w * tf.where(gap < 0, -1.0, 1.0)[:, None]  # the same hyperplane, oriented so that the gap is >= 0
    gap = tf.abs(gap)
    room = tf.clip_by_value(tf.where(w > 0, points, 1.0 - points), 0.0, 1.0)
    size = tf.abs(w)
    if norm == "linf":
        moves = w != 0
        level = _water_level(tf.where(moves, size, 0.0), room, gap)
        step = tf.minimum(level[:, None], room)
    else:
        moves = size > _L2_TINY_WEIGHT
        safe_size = tf.where(moves, size, 1.0)
        breakpoints = tf.where(moves, room / safe_size, 0.0)
        level = _water_level(tf.where(moves, tf.square(size), 0.0), breakpoints, gap)
        step = safe_size * tf.minimum(level[:, None], breakpoints)
    return tf.where(moves, -tf.sign(w) * step, 0.0)


def _norm(flat, norm):
    return geometry.linf_norm(flat) if norm == "linf" else geometry.l2_norm(flat)


def _logit_of(logits, classes):
    return tf.gather(logits, classes, axis=1, batch_dims=1)


def _targeted_boundary(forward, x1, labels, targets):
    """The gap z_t - z_y at x1 (> 0 beyond the boundary) and its input gradient, flattened to [n, D]."""
    with tf.GradientTape() as tape:
        tape.watch(x1)
        logits = tf.cast(forward(x1)["logits"], tf.float32)
        gap = _logit_of(logits, targets) - _logit_of(logits, labels)
        total = tf.reduce_sum(gap)
    grad = tape.gradient(total, x1, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return gap, tf.reshape(grad, [tf.shape(x1)[0], -1])


def _closest_boundary(forward, x1, labels, norm):
    """Untargeted FAB: of the boundaries between y and every other class, linearised at x1, the one nearest in
    `norm` (gap / dual norm of its gradient); its gap and gradient as in `_targeted_boundary`. Needs the input
    Jacobian of all the logits (one backward pass per class)."""
    with tf.GradientTape() as tape:
        tape.watch(x1)
        logits = tf.cast(forward(x1)["logits"], tf.float32)
    jacobian = tape.batch_jacobian(logits, x1, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    count, classes = tf.shape(x1)[0], tf.shape(logits)[1]
    jacobian = tf.reshape(jacobian, [count, classes, -1])
    gaps = logits - _logit_of(logits, labels)[:, None]
    grads = jacobian - tf.gather(jacobian, labels, axis=1, batch_dims=1)[:, None]
    dual = tf.reduce_sum(tf.abs(grads), axis=2) if norm == "linf" else tf.sqrt(tf.reduce_sum(tf.square(grads), 2))
    distance = tf.abs(gaps) / (dual + 1e-12)
    distance = tf.where(tf.one_hot(labels, classes, on_value=True, off_value=False), np.inf, distance)
    closest = tf.argmin(distance, axis=1, output_type=tf.int32)
    return _logit_of(gaps, closest), tf.gather(grads, closest, axis=1, batch_dims=1)


def fab_run(forward, x0, x_start, labels, targets, *, steps, norm, alpha_max, eta, beta):
    """One FAB run of `steps` steps from x_start towards the boundary between labels and targets (int32 [n]), or
    with targets None the nearest boundary at each step. Returns the closest misclassified point found (x0 where
    none) and its distance to x0 (1e10 where none)."""
    count = tf.shape(x0)[0]
    x0_flat = tf.reshape(x0, [count, -1])

    def unflatten(flat):
        return tf.ensure_shape(tf.reshape(flat, tf.shape(x0)), x0.shape)

    def body(iteration, x1, best_x, best_distance):
        if targets is None:
            gap, w = _closest_boundary(forward, x1, labels, norm)
        else:
            gap, w = _targeted_boundary(forward, x1, labels, targets)
        x1_flat = tf.reshape(x1, [count, -1])
        # The linearised boundary gap + <w, x - x1> = 0, i.e. <w, x> = <w, x1> - gap.
        b = tf.reduce_sum(w * x1_flat, axis=1) - gap
        both = hyperplane_box_projection(tf.concat([x1_flat, x0_flat], 0), tf.concat([w, w], 0),
                                         tf.concat([b, b], 0), norm)
        to_current, to_original = both[:count], both[count:]
        from_current = tf.maximum(_norm(to_current, norm), _TINY_STEP)
        from_original = tf.maximum(_norm(to_original, norm), _TINY_STEP)
        alpha = tf.clip_by_value(from_current / (from_current + from_original), 0.0, alpha_max)[:, None]
        x1_flat = tf.clip_by_value((x1_flat + eta * to_current) * (1.0 - alpha)
                                   + (x0_flat + eta * to_original) * alpha, 0.0, 1.0)

        logits = forward(unflatten(x1_flat))["logits"]
        fooled = tf.not_equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels)
        distance = _norm(x1_flat - x0_flat, norm)
        closer = tf.logical_and(fooled, distance < best_distance)
        best_x = tf.where(closer[:, None], x1_flat, best_x)
        best_distance = tf.where(closer, distance, best_distance)
        x1_flat = tf.where(fooled[:, None], x0_flat + beta * (x1_flat - x0_flat), x1_flat)
        return iteration + 1, unflatten(x1_flat), best_x, best_distance

    state = (tf.constant(0), x_start, x0_flat, tf.fill([count], tf.constant(_NOT_FOUND, tf.float32)))
    _, _, best_x, best_distance = tf.while_loop(lambda i, *_: i < steps, body, state, maximum_iterations=steps)
    return unflatten(best_x), best_distance


def fab_attack(forward, x01, labels, *, eps, norm="linf", steps=100, targets=None, restarts=1, seed=0,
               alpha_max=0.1, eta=1.05, beta=0.9):
    """FAB-T towards `targets` (untargeted FAB with targets None); returns images in [0, 1] (no gradient): each
    example's closest misclassified point found if it lies within eps of x01, else x01 itself (also for examples
    misclassified at x01).

    forward: `forward(x01) -> {"logits": [B, N], ...}` (see `model_forward`). x01: float images [B, ...] in
    [0, 1]. labels: true labels [B]. targets: target classes [B] (AutoAttack's FAB-T uses
    `ranked_targets(clean_logits, rank)` for rank 1 .. 9), or None for untargeted FAB, which steps towards the
    nearest linearised boundary and needs the Jacobian of all N logits (N backward passes per step). eps: radius
    in [0, 1] units, used for the random starts and to accept the result. steps: iterations per restart (FAB-T:
    2 forward passes and 1 backward pass each).
    restarts: runs on the examples not yet fooled within eps; run 0 starts at x01, run r > 0 at a random point at
    distance eps / 2 drawn with `derived_seed(seed, r)`. alpha_max: the largest bias towards the original image;
    eta: overshoot of each projection step; beta: backward step towards x01 after a misclassified point.
    """
    geometry.check_norm(norm)
    check_eps(eps)
    check_count("steps", steps)
    check_count("restarts", restarts)
    check_number("alpha_max", alpha_max, 0.0, strict=False)
    check_number("eta", eta, 0.0, strict=True)
    check_number("beta", beta, 0.0, strict=True)
    if alpha_max > 1 or beta > 1:
        raise UsageError(f"alpha_max and beta are fractions in [0, 1] and (0, 1], got alpha_max={alpha_max!r}, "
                         f"beta={beta!r}")
    x = check_images(x01)
    seed = starts.as_seed(seed)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    if targets is not None:
        targets = tf.cast(tf.reshape(targets, [-1]), tf.int32)
    logits = forward(x)["logits"]
    check_targets(targets, logits.shape[-1])
    correct = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels)

    result, found = x, tf.zeros_like(correct)
    for restart in range(restarts):
        index = tf.where(tf.logical_and(correct, tf.logical_not(found)))[:, 0]
        x0 = tf.gather(x, index)
        if restart == 0:
            x_start = x0
        else:  # the reference's random start: distance eps / 2 in the attack's norm
            x_start = tf.gather(starts.sphere_start(x, 0.5 * eps, norm, starts.derived_seed(seed, restart)), index)
            x_start = tf.clip_by_value(x_start, 0.0, 1.0)
        best_x, best_distance = tf.cond(  # some networks fail on an empty batch: skip the run then
            tf.size(index) > 0,
            lambda: fab_run(forward, x0, x_start, tf.gather(labels, index),  # noqa: B023
                            None if targets is None else tf.gather(targets, index),  # noqa: B023
                            steps=steps, norm=norm, alpha_max=alpha_max, eta=eta, beta=beta),
            lambda: (x0, tf.zeros([0], tf.float32)))  # noqa: B023
        within = best_distance <= eps
        result = tf.tensor_scatter_nd_update(result, index[:, None],
                                             tf.where(geometry.per_example(within, x0), best_x, x0))
        found = tf.tensor_scatter_nd_update(found, index[:, None], within)
    return tf.stop_gradient(result)
