"""TorchSGD against a NumPy transcription of torch.optim.SGD's documented update rule, under a per-step cosine
schedule, over several steps; and the trainer's optimizer choice."""

import math

import keras
import numpy as np
import pytest

from mocse_tf.training.config import TrainConfig
from mocse_tf.training.optimizer import TorchSGD, make_sgd
from mocse_tf.training.run import make_optimizer
from mocse_tf.training.schedules import make_schedule

STEPS = 6
PEAK_LR = 0.1


def cosine_lr(step, total):
    """torch CosineAnnealingLR(T_max=total, eta_min=0) stepped once per optimizer step, closed form."""
    return 0.5 * PEAK_LR * (1.0 + math.cos(math.pi * step / total))


def torch_sgd_reference(weights, gradients, *, momentum, weight_decay, nesterov, total_steps):
    """torch.optim.SGD (dampening 0, maximize False) in NumPy float64: the rule from its documentation."""
    weights = [w.astype(np.float64).copy() for w in weights]
    buffers = [None] * len(weights)
    for step, step_gradients in enumerate(gradients):
        lr = cosine_lr(step, total_steps)
        for i, grad in enumerate(step_gradients):
            g = grad.astype(np.float64) + weight_decay * weights[i]
            if momentum:
                buffers[i] = g.copy() if buffers[i] is None else momentum * buffers[i] + g
                g = g + momentum * buffers[i] if nesterov else buffers[i]
            weights[i] = weights[i] - lr * g
    return weights


def keras_steps(optimizer, weights, gradients):
    variables = [keras.Variable(w) for w in weights]
    for step_gradients in gradients:
        optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step_gradients], variables))
    return [keras.ops.convert_to_numpy(v) for v in variables]


def problem(seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(5,)).astype(np.float32)]
    gradients = [[rng.normal(size=w.shape).astype(np.float32) for w in weights] for _ in range(STEPS)]
    return weights, gradients


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [5e-4, 0.05])
@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_torch_sgd_matches_torch_update_rule(nesterov, weight_decay, momentum):
    if nesterov and not momentum:
        pytest.skip("torch rejects Nesterov without momentum")
    weights, gradients = problem()
    schedule = make_schedule("cosine", PEAK_LR, STEPS)
    optimizer = TorchSGD(schedule, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    got = keras_steps(optimizer, weights, gradients)
    want = torch_sgd_reference(weights, gradients, momentum=momentum, weight_decay=weight_decay,
                               nesterov=nesterov, total_steps=STEPS)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)


def test_keras_decoupled_sgd_is_not_the_torch_rule():
    """The reference tells the two apart, so the test above would catch a fall-back to Keras' SGD."""
    weights, gradients = problem()
    want = torch_sgd_reference(weights, gradients, momentum=0.9, weight_decay=0.05, nesterov=False,
                               total_steps=STEPS)
    decoupled = make_sgd(make_schedule("cosine", PEAK_LR, STEPS), momentum=0.9, nesterov=False, weight_decay=0.05,
                         weight_decay_mode="decoupled")
    got = keras_steps(decoupled, weights, gradients)
    assert max(np.max(np.abs(g - w)) for g, w in zip(got, want)) > 1e-3


def test_trainer_uses_coupled_decay_by_default_and_decoupled_only_when_asked():
    config = TrainConfig()
    assert config.weight_decay_mode == "coupled"
    optimizer = make_optimizer(config, steps_per_epoch=10)
    assert isinstance(optimizer, TorchSGD) and optimizer.coupled_weight_decay == 5e-4
    assert optimizer.weight_decay is None  # Keras' decoupled decay is off
    decoupled = make_optimizer(TrainConfig(weight_decay_mode="decoupled"), steps_per_epoch=10)
    assert not isinstance(decoupled, TorchSGD) and decoupled.weight_decay == 5e-4


def test_unknown_weight_decay_mode_names_choices():
    with pytest.raises(ValueError, match="'l2'.*coupled, decoupled"):
        TrainConfig(weight_decay_mode="l2").validate()


@pytest.mark.parametrize("nesterov", [False, True])
def test_torch_sgd_matches_torch_optim_sgd(nesterov):
    """Peer check against torch.optim.SGD itself where PyTorch is installed (a test-only extra, never a runtime
    dependency); the learning rate is set before every step to the same per-step cosine value."""
    torch = pytest.importorskip("torch")
    weights, gradients = problem(seed=3)
    parameters = [torch.nn.Parameter(torch.tensor(w, dtype=torch.float64)) for w in weights]
    reference = torch.optim.SGD(parameters, lr=PEAK_LR, momentum=0.9, weight_decay=5e-4, nesterov=nesterov)
    for step, step_gradients in enumerate(gradients):
        for group in reference.param_groups:
            group["lr"] = cosine_lr(step, STEPS)
        for parameter, grad in zip(parameters, step_gradients):
            parameter.grad = torch.tensor(grad, dtype=torch.float64)
        reference.step()
    optimizer = TorchSGD(make_schedule("cosine", PEAK_LR, STEPS), momentum=0.9, nesterov=nesterov, weight_decay=5e-4)
    for got, want in zip(keras_steps(optimizer, weights, gradients), parameters):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=0, atol=1e-6)
