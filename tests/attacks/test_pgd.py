"""PGD and FGSM: the analytic optimum on a linear model, the epsilon-ball and [0, 1] constraints of every attack,
seeds, restarts, targeted attacks, and argument checks."""

import numpy as np
import pytest
import tensorflow as tf

from tests.attacks.attack_models import linear_logistic_forward, tiny_conv_net
from mocse_tf import attacks
from mocse_tf.attacks import geometry
from mocse_tf.errors import UsageError

EPS = {"linf": 8.0 / 255.0, "l2": 0.5}


def _linear_problem(low, high, count=6, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=32 * 32 * 3).astype(np.float32) * 0.02
    x = rng.uniform(low, high, size=(count, 32, 32, 3)).astype(np.float32)
    labels = np.arange(count) % 2
    return weights, x, labels


def _loss(forward, x, labels):
    return attacks.attack_loss_fn("ce", labels)(forward(tf.constant(x, tf.float32))).numpy()


@pytest.mark.parametrize("random_start, keep", [(False, "last"), (True, "last"), (True, "loss")])
def test_linf_pgd_reaches_the_optimum_of_a_linear_model(random_start, keep):
    weights, x, labels = _linear_problem(0.0, 1.0)  # pixels near 0 and 1: clipping to [0, 1] binds
    forward = linear_logistic_forward(weights)
    eps = EPS["linf"]
    # Label 1 wants z = <w, x> large, so the attack lowers z: x - eps sign(w); label 0 raises it.
    direction = np.where(labels[:, None] == 1, -1.0, 1.0) * np.sign(weights)[None, :]
    optimum = np.clip(x.reshape(len(x), -1) + eps * direction, 0, 1).reshape(x.shape).astype(np.float32)
    assert np.any(optimum != x.reshape(len(x), -1).reshape(x.shape) + eps * direction.reshape(x.shape))
    adv = attacks.pgd(forward, x, labels, eps=eps, step_size=eps / 4, steps=10, random_start=random_start,
                      keep=keep, seed=5)
    np.testing.assert_allclose(_loss(forward, adv, labels), _loss(forward, optimum, labels), atol=1e-4)
    np.testing.assert_allclose(adv, optimum, atol=1e-6)


@pytest.mark.parametrize("random_start", [False, True])
def test_l2_pgd_reaches_the_optimum_of_a_linear_model(random_start):
    weights, x, labels = _linear_problem(0.3, 0.7)  # interior images: the [0, 1] box does not bind
    forward = linear_logistic_forward(weights)
    eps = EPS["l2"]
    unit = weights / np.linalg.norm(weights)
    optimum = x.reshape(len(x), -1) + eps * np.where(labels[:, None] == 1, -1.0, 1.0) * unit[None, :]
    optimum = optimum.reshape(x.shape).astype(np.float32)
    assert optimum.min() > 0 and optimum.max() < 1
    adv = attacks.pgd(forward, x, labels, eps=eps, step_size=eps, steps=20, norm="l2", random_start=random_start,
                      keep="last", seed=5)
    np.testing.assert_allclose(_loss(forward, adv, labels), _loss(forward, optimum, labels), atol=1e-4)
    np.testing.assert_allclose(adv, optimum, atol=1e-5)


def test_fgsm_on_a_linear_model_is_the_signed_step():
    weights, x, labels = _linear_problem(0.0, 1.0)
    forward = linear_logistic_forward(weights)
    eps = 4.0 / 255.0
    direction = np.where(labels[:, None] == 1, -1.0, 1.0) * np.sign(weights)[None, :]
    expected = np.clip(x.reshape(len(x), -1) + eps * direction, 0, 1).reshape(x.shape)
    np.testing.assert_allclose(attacks.fgsm(forward, x, labels, eps=eps), expected, atol=1e-6)


# (kind, settings): every attack of the module, with and without restarts.
ATTACKS = [
    ("fgsm", {}),
    ("fgsm_rs", {}),
    ("pgd", {"steps": 3}),
    ("pgd", {"steps": 3, "restarts": 2, "keep": "loss"}),
    ("pgd", {"steps": 3, "restarts": 2, "objective": "dlr"}),
    ("apgd", {"steps": 4}),
    ("apgd", {"steps": 4, "restarts": 2, "objective": "dlr"}),
    ("trades", {"steps": 3}),
]


@pytest.fixture(scope="module")
def random_net_batch():
    net = tiny_conv_net()
    x = np.random.default_rng(0).uniform(0, 1, size=(8, 32, 32, 3)).astype(np.float32)
    labels = np.arange(8) % 4
    return attacks.model_forward(net), x, labels


CASES = [(kind, settings, norm, targeted) for kind, settings in ATTACKS for norm in ("linf", "l2")
         for targeted in (False, True) if not (kind == "trades" and targeted)]  # TRADES is untargeted


@pytest.mark.parametrize("kind, settings, norm, targeted", CASES, ids=lambda a: str(a))
def test_every_attack_stays_in_the_eps_ball_and_in_unit_range(random_net_batch, kind, settings, norm, targeted):
    forward, x, labels = random_net_batch
    attack = attacks.make_attack(kind, eps=EPS[norm], norm=norm, **settings)
    targets = (labels + 1) % 4 if targeted else None
    adv = attack.generate(forward, x, labels, seed=11, targets=targets).numpy()
    assert adv.shape == x.shape and adv.dtype == np.float32
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    delta = tf.constant(adv - x)
    if norm == "linf":
        assert np.abs(adv - x).max() <= EPS[norm] + 1e-6
    else:
        assert geometry.l2_norm(delta).numpy().max() <= EPS[norm] * (1 + 1e-5)
    assert np.abs(adv - x).max() > 0  # the attack moved


def test_same_seed_same_result_other_seed_other_result(random_net_batch):
    forward, x, labels = random_net_batch
    run = lambda seed: attacks.pgd(forward, x, labels, eps=EPS["linf"], step_size=1 / 255, steps=2, seed=seed)  # noqa
    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


@pytest.mark.parametrize("attack_fn", ["pgd", "apgd"])
def test_restarts_never_lose_to_the_first_run(trained_net, attack_fn):
    net, x, labels = trained_net
    forward = attacks.model_forward(net)
    eps = 4.0 / 255.0
    if attack_fn == "pgd":
        run = lambda restarts, keep: attacks.pgd(  # noqa: E731
            forward, x, labels, eps=eps, step_size=eps / 4, steps=5, restarts=restarts, keep=keep, seed=9)
    else:
        run = lambda restarts, keep: attacks.apgd(  # noqa: E731
            forward, x, labels, eps=eps, steps=5, restarts=restarts, keep=keep, seed=9)
    loss = lambda adv: attacks.attack_loss_fn("ce", labels)(forward(adv)).numpy()  # noqa: E731
    fooled = lambda adv: attacks.attack_success_fn(labels)(forward(adv)).numpy()  # noqa: E731

    single, several = run(1, "loss"), run(3, "loss")
    assert np.all(loss(several) >= loss(single))
    assert loss(several).mean() > loss(single).mean()  # other starts do find higher losses

    single, several = run(1, "misclassified"), run(3, "misclassified")
    assert np.all(fooled(several) >= fooled(single))
    same = fooled(several) == fooled(single)
    assert np.all(loss(several)[same] >= loss(single)[same])


@pytest.mark.parametrize("method", ["pgd", "apgd-dlr-t"])
def test_targeted_attacks_raise_the_target_probability(trained_net, method):
    net, x, labels = trained_net
    forward = attacks.model_forward(net)
    clean_logits = forward(tf.constant(x))["logits"]
    targets = attacks.ranked_targets(clean_logits, 2).numpy()  # the third most likely class
    if method == "pgd":
        adv = attacks.pgd(forward, x, labels, eps=8 / 255, step_size=2 / 255, steps=5, targets=targets, seed=1)
    else:
        adv = attacks.apgd(forward, x, labels, eps=8 / 255, steps=5, objective="dlr", targets=targets, seed=1)
    prob = lambda logits: tf.gather(tf.nn.softmax(logits), targets, batch_dims=1).numpy()  # noqa: E731
    assert np.all(prob(forward(adv)["logits"]) > prob(clean_logits))


def test_argument_errors_are_usage_errors(random_net_batch):
    forward, x, labels = random_net_batch
    common = dict(eps=0.03, step_size=0.01, steps=2)
    with pytest.raises(UsageError, match="restarts"):
        attacks.pgd(forward, x, labels, restarts=2, keep="last", **common)
    with pytest.raises(UsageError, match="float images in \\[0, 1\\]"):
        attacks.pgd(forward, (x * 255).astype(np.uint8), labels, **common)
    with pytest.raises(UsageError, match="unknown norm"):
        attacks.pgd(forward, x, labels, norm="l1", **common)
    with pytest.raises(UsageError, match="steps"):
        attacks.pgd(forward, x, labels, eps=0.03, step_size=0.01, steps=0)
    with pytest.raises(UsageError, match="eps"):
        attacks.pgd(forward, x, labels, eps=-0.1, step_size=0.01, steps=2)
    with pytest.raises(UsageError, match="keep"):
        attacks.apgd(forward, x, labels, eps=0.03, keep="last")
