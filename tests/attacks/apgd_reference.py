"""An independent NumPy APGD (Croce & Hein 2020, as their reference code runs it) on a small two-layer network whose
input gradient is computed by hand, for comparing trajectories with mocse_tf's TF implementation.

Written from the paper's Algorithm 1 and a reading of fra31/auto-attack's autopgd_base.py, in that code's shape (a
loss history, a counter, a shrinking window), not in the shape of mocse_tf.attacks.apgd. Float64 throughout.
`mutation` switches off one part of the algorithm, to show which tests notice.
"""

import numpy as np


class TwoLayerNet:
    """z = W2 relu(W1 x + b1) + b2 on flattened inputs; forward and input gradients in NumPy."""

    def __init__(self, input_shape, hidden, classes, seed):
        rng = np.random.default_rng(seed)
        dims = int(np.prod(input_shape))
        self.input_shape = tuple(input_shape)
        self.w1 = rng.normal(0, 1.0 / np.sqrt(dims), (dims, hidden))
        self.b1 = rng.normal(0, 0.1, hidden)
        self.w2 = rng.normal(0, 3.0 / np.sqrt(hidden), (hidden, classes))
        self.b2 = rng.normal(0, 0.1, classes)

    def logits(self, x):
        return self._forward(x)[1]

    def _forward(self, x):
        pre = x.reshape(len(x), -1) @ self.w1 + self.b1
        return pre, np.maximum(pre, 0.0) @ self.w2 + self.b2

    def input_gradient(self, x, dloss_dlogits):
        pre, _ = self._forward(x)
        dhidden = (dloss_dlogits @ self.w2.T) * (pre > 0)
        return (dhidden @ self.w1.T).reshape(x.shape)


def ce_loss_and_dlogits(z, y, target=None):
    rows = np.arange(len(z))
    shifted = z - z.max(1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    loss = -np.log(p[rows, y])
    grad = p.copy()
    grad[rows, y] -= 1.0
    return loss, grad


def dlr_loss_and_dlogits(z, y, target=None):
    """Untargeted DLR -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3), or with target the targeted DLR
    -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2); and their derivatives with respect to the logits."""
    rows = np.arange(len(z))
    order = np.argsort(-z, axis=1)
    grad = np.zeros_like(z)
    if target is None:
        other = np.where(order[:, 0] == y, order[:, 1], order[:, 0])
        numerator = z[rows, y] - z[rows, other]
        denominator = z[rows, order[:, 0]] - z[rows, order[:, 2]] + 1e-12
        # loss = -num / den
        np.add.at(grad, (rows, y), -1.0 / denominator)
        np.add.at(grad, (rows, other), 1.0 / denominator)
        np.add.at(grad, (rows, order[:, 0]), numerator / denominator ** 2)
        np.add.at(grad, (rows, order[:, 2]), -numerator / denominator ** 2)
    else:
        numerator = z[rows, y] - z[rows, target]
        denominator = z[rows, order[:, 0]] - 0.5 * (z[rows, order[:, 2]] + z[rows, order[:, 3]]) + 1e-12
        np.add.at(grad, (rows, y), -1.0 / denominator)
        np.add.at(grad, (rows, target), 1.0 / denominator)
        np.add.at(grad, (rows, order[:, 0]), numerator / denominator ** 2)
        np.add.at(grad, (rows, order[:, 2]), -0.5 * numerator / denominator ** 2)
        np.add.at(grad, (rows, order[:, 3]), -0.5 * numerator / denominator ** 2)
    return -numerator / denominator, grad


def _norm(v, norm):
    flat = v.reshape(len(v), -1)
    size = np.abs(flat).max(1) if norm == "linf" else np.sqrt((flat ** 2).sum(1))
    return size.reshape((-1,) + (1,) * (v.ndim - 1))


def _project(x_adv, x, eps, norm):
    delta = x_adv - x
    if norm == "linf":
        delta = np.clip(delta, -eps, eps)
    else:
        delta = delta * np.minimum(1.0, eps / (_norm(delta, "l2") + 1e-12))
    return np.clip(x + delta, 0.0, 1.0)


def apgd_reference(net, x, y, x_start, *, eps, steps, norm, loss="ce", target=None, rho=0.75, mutation=None):
    """APGD from x_start; returns ({"loss", "best_loss", "step"} [steps, B], info).

    info["causes"]: how many halvings each condition caused (the second counted where it alone fired).
    info["exact_until"] [B]: per example, the number of iterations before the first decision that float32 rounding
    could flip (two losses compared within 1e-6 relative, or a gradient entry below 1e-7 whose sign is taken):
    once a converged attack compares equal losses, a float32 implementation follows another, equally valid, path.
    mutation: None, "no_momentum", "no_second_condition", "no_restart_from_best" or "first_step_eps".
    """
    loss_fn = ce_loss_and_dlogits if loss == "ce" else dlr_loss_and_dlogits

    def loss_and_grad(point):
        value, dlogits = loss_fn(net.logits(point), y, target)
        return value, net.input_gradient(point, dlogits)

    batch = len(x)
    x_adv = _project(x_start, x, eps, norm)
    loss, grad = loss_and_grad(x_adv)
    x_best, loss_best, grad_best = x_adv.copy(), loss.copy(), grad.copy()
    step = np.full((batch,) + (1,) * (x.ndim - 1), (1.0 if mutation == "first_step_eps" else 2.0) * eps)
    x_old = x_adv.copy()
    window = max(int(0.22 * steps), 1)
    shrink, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    counter = 0
    loss_best_last_check = loss_best.copy()
    reduced_last_check = np.ones(batch, bool)
    history = np.zeros((steps, batch))  # the loss of every iterate; row -1 is read before it is written
    out = {"loss": [], "best_loss": [], "step": []}
    causes = {"oscillation": 0, "no_improvement_only": 0}
    exact_until = np.full(batch, steps)

    def close(a, b):
        return np.abs(a - b) <= 1e-6 * (1.0 + np.abs(b))

    def mark(ambiguous, i):
        exact_until[:] = np.where(ambiguous & (exact_until > i), i, exact_until)

    for i in range(steps):
        if norm == "linf":
            mark((np.abs(grad) < 1e-7).reshape(batch, -1).any(1) & (np.abs(grad) > 0).reshape(batch, -1).any(1), i)
        momentum_term = x_adv - x_old
        x_old = x_adv.copy()
        a = 0.75 if i > 0 and mutation != "no_momentum" else 1.0
        direction = np.sign(grad) if norm == "linf" else grad / (_norm(grad, "l2") + 1e-12)
        z = _project(x_adv + step * direction, x, eps, norm)
        x_adv = _project(x_adv + a * (z - x_adv) + (1 - a) * momentum_term, x, eps, norm)
        loss, grad = loss_and_grad(x_adv)
        history[i] = loss
        mark(close(loss, history[i - 1]) | close(loss, loss_best), i)
        better = loss > loss_best
        x_best[better], grad_best[better], loss_best[better] = x_adv[better], grad[better], loss[better]
        counter += 1
        if counter == window:
            rises = sum((history[i - c] > history[i - c - 1]).astype(float) for c in range(window))
            oscillating = rises <= window * rho
            mark(close(loss_best_last_check, loss_best) & (loss_best_last_check != loss_best), i)
            no_improvement = ~reduced_last_check & (loss_best_last_check >= loss_best)
            if mutation == "no_second_condition":
                no_improvement = np.zeros(batch, bool)
            reduce = oscillating | no_improvement
            causes["oscillation"] += int(oscillating.sum())
            causes["no_improvement_only"] += int((no_improvement & ~oscillating).sum())
            reduced_last_check = reduce.copy()
            loss_best_last_check = loss_best.copy()
            step[reduce] /= 2.0
            if mutation != "no_restart_from_best":
                x_adv[reduce], grad[reduce] = x_best[reduce], grad_best[reduce]
            window = max(window - shrink, shortest)
            counter = 0
        out["loss"].append(loss.copy())
        out["best_loss"].append(loss_best.copy())
        out["step"].append(step.reshape(batch).copy())
    return {name: np.array(rows) for name, rows in out.items()}, {"causes": causes, "exact_until": exact_until}
