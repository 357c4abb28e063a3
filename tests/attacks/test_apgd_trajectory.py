"""APGD's trajectory (loss, best loss and step size at every iteration) equals an independent NumPy reference of the
algorithm (tests/attacks/apgd_reference.py) on a small two-layer network, for APGD-CE and targeted DLR (APGD-T),
L-inf and L2, 20, 50 and 100 steps. Each configuration halves steps for both of APGD's reasons (asserted below),
so momentum, both halving conditions, the restart from the best point and the first step of 2 eps are all
exercised: switching off any of them changes these trajectories by 1e-2 or more (measured with the reference's
mutation switch)."""

import numpy as np
import pytest
import tensorflow as tf

from tests.attacks.apgd_reference import TwoLayerNet, apgd_reference
from mocse_tf import attacks
from mocse_tf.attacks.apgd import apgd_run

SHAPE = (4, 4, 3)
CONFIGS = [  # loss, targeted, norm, steps, seed
    ("ce", False, "linf", 20, 2),
    ("ce", False, "l2", 100, 2),
    ("dlr", True, "linf", 20, 1),
    ("dlr", True, "l2", 20, 3),
    ("dlr", True, "linf", 50, 1),
    ("dlr", True, "l2", 100, 1),
]


def _tf_forward(net):
    w1, b1, w2, b2 = (tf.constant(v, tf.float32) for v in (net.w1, net.b1, net.w2, net.b2))

    def forward(x01):
        flat = tf.reshape(x01, [tf.shape(x01)[0], -1])
        return {"logits": tf.matmul(tf.nn.relu(tf.matmul(flat, w1) + b1), w2) + b2}

    return forward


def _problem(norm, seed, targeted):
    net = TwoLayerNet(SHAPE, 16, 5, seed)
    rng = np.random.default_rng(seed + 10)
    x = rng.uniform(0.2, 0.8, (8,) + SHAPE)
    logits = net.logits(x)
    labels = np.argmax(logits, 1)
    targets = np.argsort(-logits, 1)[:, 2] if targeted else None
    eps = 0.1 if norm == "linf" else 0.5
    noise = rng.uniform(-1, 1, x.shape) if norm == "linf" else rng.normal(size=x.shape)
    size = np.abs(noise).reshape(8, -1).max(1) if norm == "linf" else np.sqrt((noise ** 2).reshape(8, -1).sum(1))
    start = x + eps * noise / size.reshape(-1, 1, 1, 1)
    # Rounded to float32 first, so both implementations start from the same numbers.
    as_float32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    return net, as_float32(x), labels, targets, eps, as_float32(start)


@pytest.mark.parametrize("loss, targeted, norm, steps, seed", CONFIGS, ids=lambda v: str(v))
def test_trajectory_equals_the_numpy_reference(loss, targeted, norm, steps, seed):
    net, x, labels, targets, eps, start = _problem(norm, seed, targeted)
    expected, info = apgd_reference(net, x, labels, start, eps=eps, steps=steps, norm=norm, loss=loss,
                                    target=targets)
    loss_fn = attacks.attack_loss_fn(loss, labels, targets)
    _, trace = apgd_run(_tf_forward(net), tf.constant(x, tf.float32), tf.constant(start, tf.float32), loss_fn,
                        attacks.attack_success_fn(labels), eps=eps, steps=steps, norm=norm, keep="loss", record=True)
    exact = np.arange(steps)[:, None] < info["exact_until"][None, :]
    # A checkpoint at the very last iteration (the reference halves there when its window ends exactly at `steps`)
    # changes nothing that is returned, and mocse_tf skips it: the last row's step size is not compared.
    exact[-1] = False
    for name in ("loss", "best_loss", "step"):
        np.testing.assert_allclose(trace[name].numpy()[exact], expected[name][exact], rtol=1e-5, atol=1e-5,
                                   err_msg=name)
    # Compared far enough to cover most checkpoints.
    assert info["exact_until"].mean() > 0.6 * steps
    assert info["causes"]["oscillation"] > 0


def test_the_configurations_exercise_every_part_of_apgd():
    """Switching off any part of APGD in the reference changes the compared part of these trajectories by more
    than the 1e-5 tolerance, and the second halving condition fires on its own: so a TF implementation missing
    any of them fails the test above (each mutation was also applied to mocse_tf.attacks.apgd and failed it)."""
    largest = dict.fromkeys(("no_momentum", "no_second_condition", "no_restart_from_best", "first_step_eps"), 0.0)
    second_condition_alone = 0
    for loss, targeted, norm, steps, seed in CONFIGS:
        net, x, labels, targets, eps, start = _problem(norm, seed, targeted)
        kwargs = dict(eps=eps, steps=steps, norm=norm, loss=loss, target=targets)
        base, info = apgd_reference(net, x, labels, start, **kwargs)
        second_condition_alone += info["causes"]["no_improvement_only"]
        exact = np.arange(steps)[:, None] < info["exact_until"][None, :]
        for mutation in largest:
            mutated, _ = apgd_reference(net, x, labels, start, mutation=mutation, **kwargs)
            largest[mutation] = max(largest[mutation], *(np.abs(base[k] - mutated[k])[exact].max() for k in base))
    assert second_condition_alone > 0
    assert all(value > 1e-3 for value in largest.values()), largest
