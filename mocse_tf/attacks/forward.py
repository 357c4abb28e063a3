"""The `forward(x01) -> outputs dict` callables that every attack differentiates, built from Keras networks.

Attacks work on images in [0, 1]; the networks take pixels in [0, 255]. Whether batch normalisation uses batch
statistics while adversarial examples are generated is an explicit choice made here, not a side effect.

Attacks always run the network in float32, whatever its dtype policy. Under mixed_float16 the input gradient of a
confident network underflows to exactly zero (7 of 64 examples at a top-2 logit gap of 7, 43 of 64 at 23.5, on a
tiny net), and robust accuracy is then overstated. `float32_compute` switches every layer's policy to float32 for
the duration of the attack's network call (in a tf.function: while it is traced), so a model trained with mixed
precision is attacked, in training and in evaluation, with the same weights computed in float32.
"""

import contextlib

import keras
import tensorflow as tf

from mocse_tf.errors import UsageError


def as_output_dict(outputs):
    """The network's outputs as a dict with at least "logits": a bare logits tensor becomes {"logits": t}."""
    if isinstance(outputs, dict):
        if "logits" not in outputs:
            raise UsageError(
                f"the network's output dict has keys {sorted(outputs)}, expected a 'logits' entry [B, N]; "
                "attacks read the class logits from outputs['logits']"
            )
        return outputs
    if isinstance(outputs, (list, tuple)):
        raise UsageError(
            f"the network returned a {type(outputs).__name__} of {len(outputs)} outputs; expected a logits tensor "
            "or a dict with 'logits' (and 'expert_logits' for MoCSE)"
        )
    return {"logits": outputs}


def _layers_of(network):
    if not isinstance(network, keras.layers.Layer):
        return []  # a plain callable: nothing to switch
    return list(network._flatten_layers(include_self=True, recursive=True))


def computes_in_float32(network):
    """Whether every layer of `network` computes in float32 (its dtype policy's compute dtype)."""
    return all(layer.compute_dtype == "float32" for layer in _layers_of(network))


@contextlib.contextmanager
def float32_compute(network):
    """Within the block, every layer of `network` computes in float32 (variables untouched: mixed-precision
    policies keep them in float32 already); the layers' own policies come back on exit, also after an error."""
    changed = [(layer, layer.dtype_policy) for layer in _layers_of(network) if layer.compute_dtype != "float32"]
    try:
        for layer, _ in changed:
            layer.dtype_policy = "float32"
        yield network
    finally:
        for layer, policy in changed:
            layer.dtype_policy = policy


def model_forward(network, *, training=False, update_bn_statistics=False, pixel_scale=255.0):
    """Returns `forward(x01)`: calls `network(x01 * pixel_scale, training=training)` and returns its dict.

    training=False (the default, as in the TRADES and AutoAttack references): batch normalisation uses its
    moving statistics, so each example's adversarial perturbation depends on that example alone.
    training=True: batch normalisation normalises with the statistics of the batch being attacked (the
    examples then interact through the batch mean and variance). Its moving averages are left untouched
    (the call runs in a `keras.StatelessScope`, which discards variable updates) unless
    update_bn_statistics=True, which lets every attack step update them as a plain training-mode call does.
    The network computes in float32 during the call (see the module docstring), whatever its dtype policy.
    """
    if update_bn_statistics and not training:
        raise UsageError(
            "update_bn_statistics=True needs training=True: only a training-mode call updates the batch "
            "normalisation moving statistics"
        )
    if not callable(network):
        raise UsageError(f"network must be a callable Keras model, got {type(network).__name__}")

    def forward(x01):
        pixels = tf.cast(x01, tf.float32) * tf.constant(pixel_scale, tf.float32)
        with float32_compute(network):
            if training and not update_bn_statistics:
                with keras.StatelessScope():
                    outputs = network(pixels, training=True)
            else:
                outputs = network(pixels, training=training)
        return as_output_dict(outputs)

    return forward
