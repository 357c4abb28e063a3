"""Attacks compute in float32 whatever the network's dtype policy: a mixed_float16 network loses no input
gradient to float16 underflow (in evaluation and in adversarial training)."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from tests.attacks.attack_models import synthetic_images, tiny_conv_net
from mocse_tf import attacks
from mocse_tf.attacks.pgd import loss_and_gradient


@pytest.fixture
def mixed_policy():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy("float32")


def _confident_net():
    """A tiny conv net (under the current dtype policy) whose logits are scaled up: top-2 gaps up to 33 logits,
    where the CE gradient (1 - p_true ~ e^-gap) is below float16's smallest subnormal (6e-8) but not float32's.
    Measured on these 64 images: 10 all-zero input gradients in float16, 0 in float32."""
    net = tiny_conv_net(num_classes=4)
    dense = net.get_layer("logits")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 100.0, bias])
    return net


def _zero_gradient_count(forward, x, labels):
    _, _, grad = loss_and_gradient(forward, tf.constant(x), attacks.attack_loss_fn("ce", labels), None)
    return int(np.sum(np.all(grad.numpy().reshape(len(x), -1) == 0, axis=1)))


def _float16_forward(network):
    """The network called as its policy says (float16 compute): what attacks did before."""
    return lambda x01: network(x01 * 255.0, training=False)


def test_mixed_float16_network_loses_no_input_gradient(mixed_policy):
    net = _confident_net()
    assert not attacks.computes_in_float32(net)
    x, _ = synthetic_images(64, seed=3)
    labels = np.argmax(net(x * 255.0)["logits"].numpy(), axis=1)  # attack the predicted class: confident
    float16_zeros = _zero_gradient_count(_float16_forward(net), x, labels)
    assert float16_zeros > 0  # the failure this guards against happens on this net
    assert _zero_gradient_count(attacks.model_forward(net), x, labels) == 0
    graph = tf.function(lambda xx: loss_and_gradient(attacks.model_forward(net), xx,
                                                     attacks.attack_loss_fn("ce", labels), None)[2])
    assert np.all(np.any(graph(tf.constant(x)).numpy().reshape(64, -1) != 0, axis=1))
    # The network's own policy is back after the attack's call: it still computes in float16.
    assert net(x * 255.0)["logits"].dtype == tf.float16
    assert not attacks.computes_in_float32(net)


def test_adversarial_training_step_attacks_in_float32(mixed_policy):
    from mocse_tf.training.adversarial import AdversarialTraining

    net = _confident_net()
    keras.config.set_dtype_policy("float32")
    twin = _confident_net()  # the same weights computing in float32
    keras.config.set_dtype_policy("mixed_float16")
    x, _ = synthetic_images(32, seed=3)
    labels = np.argmax(twin(x * 255.0)["logits"].numpy(), axis=1)
    training = AdversarialTraining(attacks.make_training_attack("pgd", steps=3, eps=8 / 255))
    perturb = lambda network: tf.function(  # noqa: E731
        lambda pixels, y: training.perturb(network, pixels, y, tf.constant(0, tf.int64)))
    mixed = perturb(net)(tf.constant(x * 255.0), tf.constant(labels)).numpy()
    reference = perturb(twin)(tf.constant(x * 255.0), tf.constant(labels)).numpy()
    # Same start, same steps: under float16 the examples whose gradient underflowed would stay at their start.
    assert np.mean(np.abs(mixed - reference) > 1e-3) < 1e-3
    assert net(x * 255.0)["logits"].dtype == tf.float16
