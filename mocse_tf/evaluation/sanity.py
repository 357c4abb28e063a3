"""Sanity checks of an adversarial evaluation, after AutoAttack's checks.py: they flag evaluations whose robust
accuracy a gradient-based attack may overstate.

- `zero_gradient_fraction`: the fraction of the attacked (clean-correct) examples whose input gradient of an
  attack's loss is exactly zero at the clean image. A gradient attack cannot move such an example at all (saturated or quantised outputs).
- `repeatability`: the same input twice must give the same logits; otherwise the model is randomised and needs an
  Expectation-over-Transformation (EOT) attack, which averages gradients over several draws.
- Gradient masking (`mocse_tf.attacks.autoattack.masking_warnings`): Square or FAB-T fooling images that APGD missed.
"""

import functools

import numpy as np
import tensorflow as tf

from mocse_tf.attacks import attack_loss_fn, ranked_targets
from mocse_tf.labels import LABEL_DTYPE, NUMPY_LABEL_DTYPE

# Two runs of a deterministic model may differ by float rounding only (oneDNN may pick other kernels per batch).
REPEAT_TOLERANCE = 1e-4


def _zero_gradient_rows(forward, objective, targeted, bce_weight, x, y):
    """bool [B]: the input gradient of the summed loss is zero everywhere for that example."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = forward(x)
        targets = ranked_targets(outputs["logits"], 1) if targeted else None
        loss = tf.reduce_sum(attack_loss_fn(objective, y, targets, bce_weight)(outputs))
    grad = tape.gradient(loss, x)
    if grad is None:  # no path from the input to the loss at all
        return tf.ones(tf.shape(x)[:1], tf.bool)
    return tf.reduce_all(tf.equal(tf.reshape(grad, [tf.shape(x)[0], -1]), 0.0), axis=1)


def zero_gradient_fraction(forward, images01, labels, objective="ce", targeted=False, batch_size=250,
                           bce_weight=1.0):
    """Fraction of examples whose input gradient of `objective` (targeted: towards the runner-up class) is exactly
    zero everywhere, at the clean images01 (float32 [N, ...] in [0, 1]). Pass the examples an attack would
    attack (the clean-correct ones): for a misclassified example the runner-up can be the label itself."""
    images01 = np.asarray(images01, np.float32)
    labels = np.asarray(labels, NUMPY_LABEL_DTYPE)
    if not len(labels):
        return 0.0
    # A partial of a module-level function, not a closure: TF counts traces per code object, and a new closure per
    # call would be reported as retracing.
    zero_rows = tf.function(functools.partial(_zero_gradient_rows, forward, objective, targeted, bce_weight),
                            input_signature=[tf.TensorSpec([None, *images01.shape[1:]], tf.float32),
                                             tf.TensorSpec([None], LABEL_DTYPE)], autograph=False)
    zero = [zero_rows(tf.constant(images01[i:i + batch_size]), tf.constant(labels[i:i + batch_size], LABEL_DTYPE))
            .numpy() for i in range(0, len(labels), batch_size)]
    return float(np.concatenate(zero).mean())


def repeatability(forward, images01, repeats=2):
    """The largest difference between the logits of `repeats` passes over the same images (0 for a deterministic
    model), relative to the logits' scale; and whether it is within REPEAT_TOLERANCE."""
    x = tf.constant(np.asarray(images01, np.float32))
    runs = [forward(x)["logits"].numpy().astype(np.float64) for _ in range(repeats)]
    scale = 1.0 + np.abs(runs[0]).max()
    largest = max(float(np.abs(run - runs[0]).max()) for run in runs[1:]) / scale
    return float(largest), bool(largest <= REPEAT_TOLERANCE)


def randomness_warning(largest):
    """The warning when two passes over the same images differ."""
    return (f"the model gave different logits for the same input twice (largest difference {largest:.2e} of the "
            f"logits' scale): it looks randomised, and a single-draw attack overstates its robustness; evaluate it "
            f"with an Expectation-over-Transformation (EOT) version of the attacks (gradients averaged over draws)")


def zero_gradient_warning(stage_name, fraction):
    return (f"{stage_name}: {100 * fraction:.1f}% of the attacked examples have an all-zero input gradient of its "
            f"loss; a gradient attack cannot move them, so its robust accuracy may be overstated (masked gradients)")
