"""The training optimizer: SGD with PyTorch's update rule, so a weight decay of 5e-4 means what CIFAR recipes mean.

`torch.optim.SGD(lr, momentum, weight_decay, nesterov)` with dampening 0 does, for every parameter w:

    g = grad + weight_decay * w                  # coupled L2: the decay goes through the momentum buffer
    b = momentum * b + g                         # b starts at 0, so the first step has b = g
    g = g + momentum * b if nesterov else b
    w = w - lr * g

Keras' own SGD differs twice: its `weight_decay` is decoupled (`w -= lr * wd * w` after the step, about ten times
weaker at momentum 0.9), and its momentum buffer holds lr-scaled steps (`m = momentum * m - lr * g`), which equals
PyTorch's only while the learning rate is constant, not under a per-step cosine schedule. `TorchSGD` keeps Keras'
slot variables (one "momentum" per parameter, so checkpoints have the same layout) and applies the rule above.
Every trainable variable is decayed, BN scales and offsets and biases included, as `model.parameters()` does in the
PyTorch CIFAR references.
"""

import keras
from keras import ops

from mocse_tf.errors import check_choice

WEIGHT_DECAY_MODES = ("coupled", "decoupled")


class TorchSGD(keras.optimizers.SGD):
    """SGD exactly as torch.optim.SGD (dampening 0): coupled weight decay, unscaled momentum buffer."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, name="torch_sgd",
                 **kwargs):
        # Keras' decoupled decay stays off: weight_decay is applied inside update_step instead.
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, name=name, **kwargs)
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.coupled_weight_decay = float(weight_decay)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.coupled_weight_decay:
            gradient = ops.add(gradient, ops.multiply(ops.cast(self.coupled_weight_decay, variable.dtype), variable))
        if self.momentum != 0:
            momentum = ops.cast(self.momentum, variable.dtype)
            buffer = self.momentums[self._get_variable_index(variable)]
            new_buffer = ops.add(ops.multiply(buffer, momentum), gradient)
            self.assign(buffer, new_buffer)
            gradient = ops.add(gradient, ops.multiply(new_buffer, momentum)) if self.nesterov else new_buffer
        self.assign_sub(variable, ops.multiply(gradient, learning_rate))

    def get_config(self):
        config = super().get_config()
        config["weight_decay"] = self.coupled_weight_decay
        return config


def check_weight_decay_mode(mode):
    return check_choice("weight_decay_mode", mode, WEIGHT_DECAY_MODES)


def make_sgd(learning_rate, *, momentum, nesterov, weight_decay, weight_decay_mode="coupled"):
    """SGD for the trainer: `coupled` (default) is torch.optim.SGD's rule (TorchSGD); `decoupled` is Keras' own
    SGD with its decoupled decay (`w -= lr * wd * w` after the step) and lr-scaled momentum."""
    check_weight_decay_mode(weight_decay_mode)
    if weight_decay_mode == "coupled":
        return TorchSGD(learning_rate, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov,
                                weight_decay=weight_decay or None)
