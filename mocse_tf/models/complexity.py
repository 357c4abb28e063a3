"""Parameter and multiply-accumulate counts of a network, for the README table and the benchmarks."""

import keras
import numpy as np


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def multiply_accumulates(model):
    """MACs of one forward pass of one image through every Conv2D, Dense and BatchNormalization layer (nested
    models included)."""
    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, out_h, out_w, _ = layer.output.shape
            total += out_h * out_w * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.BatchNormalization):  # at inference a * x + b per element
            total += int(np.prod(layer.output.shape[1:]))
    return int(total)


def trainable_parameters(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))
