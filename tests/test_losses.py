import numpy as np
import pytest

from mocse_tf import losses


def test_class_cross_entropy_by_hand():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    expected = [-np.log(np.exp(2) / (np.exp(2) + 2)), np.log(3.0)]
    np.testing.assert_allclose(losses.class_cross_entropy([0, 2], logits), expected, rtol=1e-6)


def test_expert_bce_is_mean_of_one_vs_rest_binary_losses():
    # 1 example of class 1, 3 experts with margins z_true - z_false of 1, 2, -3.
    expert_logits = np.array([[[0.0, 1.0], [0.5, 2.5], [3.0, 0.0]]], np.float32)
    sigmoid = lambda m: 1 / (1 + np.exp(-m))  # noqa: E731
    expected = np.mean([-np.log(1 - sigmoid(1.0)), -np.log(sigmoid(2.0)), -np.log(1 - sigmoid(-3.0))])
    np.testing.assert_allclose(losses.expert_binary_cross_entropy([1], expert_logits), [expected], rtol=1e-6)
    # Experts 1 (yes) and 2 (no) decide right, expert 0 says yes to a class that is not its own.
    np.testing.assert_allclose(losses.expert_binary_accuracy([1], expert_logits), [2 / 3])


def test_total_loss_adds_weighted_bce_only_for_experts():
    logits = np.array([[1.0, 0.0]], np.float32)
    expert_logits = np.array([[[0.0, 1.0], [1.0, 0.0]]], np.float32)
    ce = float(losses.class_cross_entropy([0], logits)[0])
    bce = float(losses.expert_binary_cross_entropy([0], expert_logits)[0])
    assert float(losses.mocse_total_loss([0], {"logits": logits}, 2.0)[0]) == pytest.approx(ce)
    total = losses.mocse_total_loss([0], {"logits": logits, "expert_logits": expert_logits}, 2.0)
    assert float(total[0]) == pytest.approx(ce + 2.0 * bce, rel=1e-6)
