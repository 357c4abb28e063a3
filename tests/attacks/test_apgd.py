"""APGD: its checkpoint schedule, the optimum on a linear model, and step-size halving on a concave objective."""

import numpy as np
import pytest
import tensorflow as tf

from tests.attacks.attack_models import linear_logistic_forward
from mocse_tf import attacks
from mocse_tf.attacks.apgd import apgd_run
from mocse_tf.attacks.pgd import pgd_run


def test_checkpoints_follow_the_reference_code():
    # fra31/auto-attack: windows of int(0.22 n), shrinking by int(0.03 n) to at least int(0.06 n) (each >= 1).
    assert attacks.apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert attacks.apgd_checkpoints(50) == [11, 21, 30, 38, 45]  # the paper's formula gives 11, 21, 29, 35, ...
    assert attacks.apgd_checkpoints(20) == [4, 7, 9] + list(range(10, 20))
    assert attacks.apgd_checkpoints(1) == []


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
