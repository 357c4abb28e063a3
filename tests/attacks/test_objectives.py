"""Attack objectives on handcrafted logits: DLR, targeted DLR, the TRADES KL and loss, the MoCSE total loss."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mocse_tf import attacks
from mocse_tf.errors import UsageError

LOGITS = np.array([[3.0, 1.0, 2.0, 0.0], [1.0, 4.0, 2.0, -2.0]], np.float32)


def test_dlr_on_handcrafted_logits():
    # Example 0, label 0 (predicted): -(3 - 2) / (3 - 1). Example 1, label 2 (not predicted): -(2 - 4) / (4 - 1).
    np.testing.assert_allclose(attacks.dlr_loss([0, 2], LOGITS), [-0.5, 2.0 / 3.0], rtol=1e-6)
    # Example 0 with label 1: the best other class is the top one: -(1 - 3) / (3 - 1).
    np.testing.assert_allclose(attacks.dlr_loss([1, 0], LOGITS), [1.0, -(1.0 - 4.0) / (4.0 - 1.0)], rtol=1e-6)


def test_dlr_is_invariant_to_shifting_and_scaling_logits():
    labels = [0, 2]
    np.testing.assert_allclose(attacks.dlr_loss(labels, 7.0 * LOGITS - 3.0), attacks.dlr_loss(labels, LOGITS),
                               rtol=1e-5)


def test_targeted_dlr_on_handcrafted_logits():
    # -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2): example 0 (y 0, t 3): -3 / (3 - 0.5);
    # example 1 (y 1, t 2): sorted 4, 2, 1, -2: -(4 - 2) / (4 - (1 - 2) / 2).
    np.testing.assert_allclose(attacks.targeted_dlr_loss([0, 1], [3, 2], LOGITS), [-1.2, -2.0 / 4.5], rtol=1e-6)


def test_dlr_needs_enough_classes():
    with pytest.raises(UsageError, match="at least 3 classes"):
        attacks.dlr_loss([0], [[1.0, 2.0]])
    with pytest.raises(UsageError, match="at least 4 classes"):
        attacks.targeted_dlr_loss([0], [1], [[1.0, 2.0, 3.0]])


def test_trades_loss_is_ce_plus_beta_kl_on_handcrafted_numbers():
    # Clean p = (1/4, 3/4), adversarial q = (1/2, 1/2), label 1.
    clean, adv = [[0.0, math.log(3.0)]], [[0.0, 0.0]]
    kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    ce = -math.log(0.75)
    np.testing.assert_allclose(attacks.trades_kl(clean, adv), [kl], rtol=1e-6)
    np.testing.assert_allclose(attacks.trades_loss([1], clean, adv, beta=6.0), [ce + 6.0 * kl], rtol=1e-6)
    # Three classes: p = (1/2, 1/4, 1/4), q = (1/4, 1/2, 1/4): KL = 1/2 ln 2 - 1/4 ln 2 = ln(2) / 4.
    clean3, adv3 = [[math.log(2.0), 0.0, 0.0]], [[0.0, math.log(2.0), 0.0]]
    np.testing.assert_allclose(attacks.trades_kl(clean3, adv3), [math.log(2.0) / 4.0], rtol=1e-6)
    np.testing.assert_allclose(attacks.trades_loss([0], clean3, adv3, beta=2.0),
                               [math.log(2.0) + 2.0 * math.log(2.0) / 4.0], rtol=1e-6)


def test_trades_kl_is_zero_at_equal_logits_and_differentiable_in_both_arguments():
    clean = tf.constant([[0.3, -1.0, 2.0]])
    adv = tf.constant([[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(attacks.trades_kl(clean, clean + 5.0), [0.0], atol=1e-6)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([clean, adv])
        kl = attacks.trades_kl(clean, adv)
    assert np.abs(tape.gradient(kl, clean).numpy()).sum() > 0
    assert np.abs(tape.gradient(kl, adv).numpy()).sum() > 0


def test_mocse_total_objective_adds_weighted_expert_bce():
    # Two experts: expert 0 says p(true) = 1/2, expert 1 says 3/4; the aggregate margin logits are (0, ln 3).
    outputs = {"logits": tf.constant([[0.0, math.log(3.0)]]),
               "expert_logits": tf.constant([[[0.0, 0.0], [0.0, math.log(3.0)]]])}
    ce = math.log(4.0)  # label 0: softmax(0, ln 3)[0] = 1/4
    bce = (math.log(2.0) + math.log(4.0)) / 2.0  # expert 0 target 1: -ln 1/2; expert 1 target 0: -ln 1/4
    total = attacks.attack_loss_fn("mocse_total", [0], bce_weight=2.0)(outputs)
    np.testing.assert_allclose(total, [ce + 2.0 * bce], rtol=1e-6)
    np.testing.assert_allclose(attacks.attack_loss_fn("expert_bce", [0])(outputs), [bce], rtol=1e-6)
    # Targeted: minus the loss at the target label.
    np.testing.assert_allclose(attacks.attack_loss_fn("ce", [0], targets=[1])(outputs), [math.log(0.75)], rtol=1e-6)


def test_expert_objective_needs_expert_logits():
    with pytest.raises(UsageError, match="expert_logits"):
        attacks.attack_loss_fn("expert_bce", [0])({"logits": tf.zeros([1, 3])})
    with pytest.raises(UsageError, match="unknown attack objective"):
        attacks.attack_loss_fn("hinge", [0])


def test_success_untargeted_and_targeted():
    outputs = {"logits": tf.constant(LOGITS)}  # predictions 0 and 1
    assert attacks.attack_success_fn([0, 0])(outputs).numpy().tolist() == [False, True]
    assert attacks.attack_success_fn([0, 0], targets=[2, 1])(outputs).numpy().tolist() == [False, True]


def test_ranked_targets():
    assert attacks.ranked_targets(tf.constant(LOGITS), 1).numpy().tolist() == [2, 2]
    assert attacks.ranked_targets(tf.constant(LOGITS), 3).numpy().tolist() == [3, 3]
    with pytest.raises(UsageError, match="rank"):
        attacks.ranked_targets(tf.constant(LOGITS), 4)
