"""MoCSE: a Mixture of Class-Specific Experts (Kotyan & Vargas) as a Keras functional model.

N experts, one per class and sharing no weights, each a PreAct-ResNet-18 body with a 2-unit head
(index 0 "not class k", index 1 "class k"). A non-parametric Lambda aggregator turns each expert's "true"
output into one entry of the N-class logit vector.
"""

import keras
from keras import ops

from mocse_tf.errors import UsageError, check_choice
from mocse_tf.models.preact_resnet import check_positive_int, preact_resnet_body, torch_default_dense
from mocse_tf.models.preprocessing import normalize_pixels, pixel_input


# Each aggregator maps expert logits [B, N, 2] to class logits [B, N]. They are registered, named functions
# (not Python lambdas), so `.keras` files load with safe_mode=True.
@keras.saving.register_keras_serializable(package="mocse_tf")
def aggregate_margin(expert_logits):
    """Log-odds margin z_true - z_false of each expert: the default.

    softmax over classes of these margins ranks classes exactly as the experts' own binary probabilities
    sigmoid(z_true - z_false) do, so the class decision and each expert's yes/no decision agree, and the
    logits are unbounded, so the class softmax can become confident.
    """
    return expert_logits[..., 1] - expert_logits[..., 0]


@keras.saving.register_keras_serializable(package="mocse_tf")
def aggregate_true_logit(expert_logits):
    """The raw "class k" logit z_true of each expert (ignores what the expert says about "not k")."""
    return expert_logits[..., 1]


@keras.saving.register_keras_serializable(package="mocse_tf")
def aggregate_true_log_prob(expert_logits):
    """log p_k(true) = log_softmax over each expert's two logits, index 1 (at most 0, unbounded below)."""
    return ops.log_softmax(expert_logits, axis=-1)[..., 1]


@keras.saving.register_keras_serializable(package="mocse_tf")
def aggregate_true_prob(expert_logits):
    """p_k(true) in (0, 1) used directly as a logit: the softmax over N classes can then never exceed
    e / (e + N - 1) (about 0.23 for N = 10), which caps confidence and weakens the cross-entropy signal."""
    return ops.softmax(expert_logits, axis=-1)[..., 1]


AGGREGATORS = {
    "margin": aggregate_margin,
    "true_logit": aggregate_true_logit,
    "true_log_prob": aggregate_true_log_prob,
    "true_prob": aggregate_true_prob,
}


def check_aggregate(name):
    return check_choice("aggregate", name, tuple(AGGREGATORS))


DEFAULT_EXPERT_WIDTH = 16


def expert_network(width, input_shape, name):
    """One binary expert: normalised image -> 2 logits ("not my class", "my class")."""
    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    features = preact_resnet_body(inputs, width)
    logits = torch_default_dense(2, features.shape[-1], "binary_logits", dtype="float32")(features)
    return keras.Model(inputs, logits, name=name)


def mocse(num_classes=10, expert_width=DEFAULT_EXPERT_WIDTH, aggregate="margin", input_shape=(32, 32, 3),
          name="mocse"):
    """Builds MoCSE with `num_classes` experts named expert_0 .. expert_{N-1}.

    expert_width=64 makes every expert a full PreAct-ResNet-18 (the literal reading of the paper, N times the
    compute); the default 16 costs about the same as one PreAct-ResNet-18 (width scales FLOPs quadratically).

    Input: pixels in [0, 255], [B, H, W, 3]. Output: {"logits": [B, N], "expert_logits": [B, N, 2]}.
    The default aggregate "margin" is the log-odds margin z_true - z_false (see `aggregate_margin`): it keeps
    the class softmax consistent with the experts' binary decisions. "true_prob" (probabilities used as
    logits) caps the softmax confidence near 1 / (1 + (N - 1) / e) and is kept for ablation only.
    """
    check_positive_int("num_classes", num_classes)
    check_positive_int("expert_width", expert_width)
    if num_classes < 2:
        raise UsageError(f"MoCSE needs at least 2 classes (one expert each), got num_classes={num_classes}")
    check_aggregate(aggregate)
    pixels = pixel_input(input_shape)
    normalized = normalize_pixels(pixels)
    per_expert = []
    for k in range(num_classes):
        logits_k = expert_network(expert_width, normalized.shape[1:], f"expert_{k}")(normalized)
        per_expert.append(keras.layers.Reshape((1, 2), name=f"expert_{k}_logits")(logits_k))
    expert_logits = keras.layers.Concatenate(axis=1, dtype="float32", name="expert_logits")(per_expert)
    logits = keras.layers.Lambda(
        AGGREGATORS[aggregate], output_shape=(num_classes,), dtype="float32", name="aggregate"
    )(expert_logits)
    return keras.Model(pixels, {"logits": logits, "expert_logits": expert_logits}, name=name)
