"""APGD: its checkpoint schedule, the optimum on a linear model, and step-size halving on a concave objective."""

from fractions import Fraction
import math

import numpy as np
import pytest
import tensorflow as tf

from tests.attacks.attack_models import linear_logistic_forward
from mocse_tf import attacks
from mocse_tf.attacks.apgd import apgd_run
from mocse_tf.attacks.pgd import pgd_run


def _paper_checkpoints(steps):
    """w_j = ceil(p_j * steps), p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), exactly."""
    previous, current, points = Fraction(0), Fraction(22, 100), []
    while math.ceil(current * steps) < steps:
        points.append(math.ceil(current * steps))
        previous, current = current, current + max(current - previous - Fraction(3, 100), Fraction(6, 100))
    return sorted(set(p for p in points if p >= 1))


def test_checkpoints_follow_the_paper():
    assert attacks.apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    for steps in (1, 2, 5, 10, 20, 37, 50, 1000):
        assert attacks.apgd_checkpoints(steps) == _paper_checkpoints(steps)


@pytest.mark.parametrize("norm, low, high", [("linf", 0.0, 1.0), ("l2", 0.3, 0.7)])
def test_apgd_reaches_the_optimum_of_a_linear_model(norm, low, high):
    rng = np.random.default_rng(1)
    weights = rng.normal(size=32 * 32 * 3).astype(np.float32) * 0.02
    x = rng.uniform(low, high, size=(4, 32, 32, 3)).astype(np.float32)
    labels = np.array([0, 1, 0, 1])
    forward = linear_logistic_forward(weights)
    sign = np.where(labels[:, None] == 1, -1.0, 1.0)
    if norm == "linf":
        eps = 8 / 255
        optimum = np.clip(x.reshape(4, -1) + eps * sign * np.sign(weights)[None], 0, 1)
    else:
        eps = 0.5
        optimum = x.reshape(4, -1) + eps * sign * (weights / np.linalg.norm(weights))[None]
    optimum = optimum.reshape(x.shape).astype(np.float32)
    adv = attacks.apgd(forward, x, labels, eps=eps, steps=20, norm=norm, keep="loss", seed=2)
    loss = lambda xx: attacks.attack_loss_fn("ce", labels)(forward(tf.constant(xx))).numpy()  # noqa: E731
    np.testing.assert_allclose(loss(adv), loss(optimum), atol=1e-4)


def test_step_halving_converges_where_a_fixed_step_oscillates():
    # Concave objective -||x - c||^2 with its maximum c inside the ball: signed steps of a fixed size keep
    # jumping over c; APGD halves its step at checkpoints where the loss rose in < 75% of the steps.
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0.3, 0.7, size=(4, 6, 6, 3)), tf.float32)
    eps = 0.1
    center = x + tf.constant(rng.uniform(-0.5 * eps, 0.5 * eps, size=x.shape), tf.float32)
    forward = lambda x_adv: {"x": x_adv}  # noqa: E731
    loss_fn = lambda outputs: -tf.reduce_sum(tf.square(outputs["x"] - center), axis=[1, 2, 3])  # noqa: E731
    no_success = lambda outputs: tf.zeros(tf.shape(outputs["x"])[:1], tf.bool)  # noqa: E731
    start = attacks.project(x + eps, x, eps, "linf")

    apgd_best = apgd_run(forward, x, start, loss_fn, no_success, eps=eps, steps=100, norm="linf", keep="loss")
    pgd_best = pgd_run(forward, x, start, loss_fn, no_success, eps=eps, step_size=eps / 4, steps=100,
                       norm="linf", keep="loss")
    apgd_error = np.abs(apgd_best.x - center).max()
    pgd_error = np.abs(pgd_best.x - center).max()
    assert apgd_error < eps / 20 < pgd_error  # measured: 0.0015 and 0.025
    np.testing.assert_allclose(apgd_best.loss, loss_fn({"x": apgd_best.x}), rtol=1e-6)
