"""Attack strength on a trained tiny model: clean <= FGSM <= PGD <= APGD in loss, the reverse in accuracy;
and the MoCSE objectives on a tiny network with expert outputs."""

import numpy as np
import pytest
import tensorflow as tf

from tests.attacks.attack_models import synthetic_images, tiny_conv_net
from mocse_tf import attacks, losses

EPS = 4.0 / 255.0  # the trained tiny model keeps about 2/3 of its accuracy here: neither trivial nor hopeless


def _loss_and_accuracy(forward, x, labels):
    logits = forward(tf.constant(x))["logits"]
    accuracy = np.mean(np.argmax(logits, axis=1) == labels)
    return losses.class_cross_entropy(labels, logits).numpy().mean(), accuracy


@pytest.fixture(scope="module")
def strength_table(trained_net):
    net, x, labels = trained_net
    forward = attacks.model_forward(net)
    adversarial = {
        "clean": x,
        "fgsm": attacks.fgsm(forward, x, labels, eps=EPS),
        "pgd": attacks.pgd(forward, x, labels, eps=EPS, step_size=EPS / 4, steps=10, keep="last", seed=0),
        "pgd_best": attacks.pgd(forward, x, labels, eps=EPS, step_size=EPS / 4, steps=10, keep="loss", seed=0),
        "apgd": attacks.apgd(forward, x, labels, eps=EPS, steps=10, keep="loss", seed=0),
    }
    return {name: _loss_and_accuracy(forward, adv, labels) for name, adv in adversarial.items()}


def test_pgd_beats_fgsm_beats_clean(strength_table):
    loss = {name: value[0] for name, value in strength_table.items()}
    accuracy = {name: value[1] for name, value in strength_table.items()}
    assert accuracy["clean"] >= 0.9  # the model did learn the task
    assert loss["pgd"] > loss["fgsm"] > loss["clean"]
    assert accuracy["pgd"] <= accuracy["fgsm"] <= accuracy["clean"]
    assert accuracy["pgd"] < accuracy["clean"]


def test_apgd_is_at_least_as_strong_as_pgd_with_the_same_budget(strength_table):
    # Same 10 gradient steps (APGD spends one more on its start), same eps, both keeping the highest loss.
    assert strength_table["apgd"][0] >= strength_table["pgd_best"][0]
    assert strength_table["apgd"][1] <= strength_table["pgd_best"][1]


def test_dlr_attack_lowers_accuracy(trained_net):
    net, x, labels = trained_net
    forward = attacks.model_forward(net)
    adv = attacks.apgd(forward, x, labels, eps=EPS, steps=10, objective="dlr", seed=0)
    clean_accuracy = _loss_and_accuracy(forward, x, labels)[1]
    assert _loss_and_accuracy(forward, adv, labels)[1] < clean_accuracy


def test_mocse_objectives_attack_the_experts():
    net = tiny_conv_net(experts=True)
    forward = attacks.model_forward(net)
    x, labels = synthetic_images(8, seed=3)
    total = lambda xx, w: losses.mocse_total_loss(labels, forward(tf.constant(xx)), w).numpy()  # noqa: E731
    run = lambda objective, w: attacks.pgd(  # noqa: E731
        forward, x, labels, eps=8 / 255, step_size=2 / 255, steps=3, objective=objective, bce_weight=w,
        keep="last", seed=4)
    assert np.all(total(run("mocse_total", 1.0), 1.0) > total(x, 1.0))
    bce = lambda xx: losses.expert_binary_cross_entropy(labels, forward(tf.constant(xx))["expert_logits"])  # noqa
    assert np.all(bce(run("expert_bce", 1.0)).numpy() > bce(x).numpy())
    # With bce_weight 0 the total loss is the class cross-entropy: the same attack, step for step.
    np.testing.assert_array_equal(run("mocse_total", 0.0), run("ce", 1.0))
