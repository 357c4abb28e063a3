import keras
import numpy as np
import pytest
import tensorflow as tf

from mocse_tf import losses
from mocse_tf.errors import UsageError
from mocse_tf.models import AGGREGATORS, mocse
from mocse_tf.models.mocse import aggregate_margin, aggregate_true_log_prob, aggregate_true_logit, \
    aggregate_true_prob

NUM_CLASSES = 4


@pytest.fixture(scope="module")
def tiny_mocse():
    return mocse(num_classes=NUM_CLASSES, expert_width=2)


def _images(n=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_experts_are_named_and_share_no_weights(tiny_mocse):
    experts = [tiny_mocse.get_layer(f"expert_{k}") for k in range(NUM_CLASSES)]
    ids = [{id(v) for v in e.weights} for e in experts]
    for i in range(NUM_CLASSES):
        for j in range(i + 1, NUM_CLASSES):
            assert not ids[i] & ids[j]
    # Every trainable weight of the model belongs to exactly one expert (the aggregator has none).
    assert sum(len(e.trainable_weights) for e in experts) == len(tiny_mocse.trainable_weights)
    out = tiny_mocse(_images())
    assert tuple(out["logits"].shape) == (6, NUM_CLASSES)
    assert tuple(out["expert_logits"].shape) == (6, NUM_CLASSES, 2)


def test_gradient_of_one_experts_bce_is_exactly_zero_for_other_experts(tiny_mocse):
    images = tf.constant(_images(), tf.float32)
    labels = tf.constant([0, 1, 2, 3, 1, 2])
    k = 2
    with tf.GradientTape() as tape:
        expert_logits = tiny_mocse(images, training=True)["expert_logits"]
        targets = losses.one_vs_rest_targets(labels, NUM_CLASSES)[:, k]
        bce_k = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, expert_logits[:, k]))
    per_expert = [tiny_mocse.get_layer(f"expert_{j}").trainable_variables for j in range(NUM_CLASSES)]
    grads = tape.gradient(bce_k, [v for vs in per_expert for v in vs],
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
    offset = 0
    for j, variables in enumerate(per_expert):
        block = grads[offset: offset + len(variables)]
        offset += len(variables)
        total = sum(float(tf.reduce_sum(tf.abs(g))) for g in block)
        if j == k:
            assert total > 0
        else:
            assert total == 0.0


def test_aggregators_on_handcrafted_logits():
    expert_logits = np.array([[[0.0, 2.0], [1.0, -1.0], [3.0, 3.0]]], np.float32)  # 1 example, 3 experts
    np.testing.assert_allclose(aggregate_margin(expert_logits), [[2.0, -2.0, 0.0]])
    np.testing.assert_allclose(aggregate_true_logit(expert_logits), [[2.0, -1.0, 3.0]])
    log_p = [-np.log1p(np.exp(-2.0)), -np.log1p(np.exp(2.0)), np.log(0.5)]
    np.testing.assert_allclose(aggregate_true_log_prob(expert_logits), [log_p], rtol=1e-6)
    np.testing.assert_allclose(aggregate_true_prob(expert_logits), [np.exp(log_p)], rtol=1e-6)


def test_margin_softmax_agrees_with_experts_but_true_prob_caps_confidence():
    # Expert 0 is certain it sees its class; the others are certain they do not.
    expert_logits = np.full((1, 10, 2), 0.0, np.float32)
    expert_logits[0, :, 0] = 20.0
    expert_logits[0, 0] = [0.0, 20.0]
    margin_confidence = float(tf.nn.softmax(aggregate_margin(expert_logits))[0, 0])
    prob_confidence = float(tf.nn.softmax(aggregate_true_prob(expert_logits))[0, 0])
    assert margin_confidence > 0.999
    assert prob_confidence == pytest.approx(np.e / (np.e + 9), abs=1e-4)  # the cap for N = 10


@pytest.mark.parametrize("aggregate", list(AGGREGATORS))
def test_keras_round_trip_with_safe_mode_restores_identical_outputs(tmp_path, aggregate):
    model = mocse(num_classes=3, expert_width=2, aggregate=aggregate)
    images = _images(4, seed=1)
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    before, after = model(images), restored(images)
    for key in ("logits", "expert_logits"):
        np.testing.assert_array_equal(before[key].numpy(), after[key].numpy())


def test_bad_arguments():
    with pytest.raises(UsageError, match="unknown aggregate 'mean'; choose one of margin"):
        mocse(aggregate="mean")
    with pytest.raises(UsageError, match="expert_width must be a positive integer, got 0"):
        mocse(expert_width=0)
    with pytest.raises(UsageError, match="at least 2 classes"):
        mocse(num_classes=1)
