"""TRADES (Zhang et al. 2019): the KL inner maximisation that makes its adversarial examples, and its loss
CE(clean) + beta * KL(p_clean || p_adv)."""

import tensorflow as tf

from mocse_tf import losses
from mocse_tf.attacks import geometry, starts
from mocse_tf.attacks.checks import check_count, check_images, check_number
from mocse_tf.attacks.pgd import pgd_run

# The TRADES reference starts its inner maximisation at x + 0.001 * N(0, 1).
START_SIGMA = 0.001


def trades_kl(clean_logits, adv_logits):
    """KL(softmax(clean) || softmax(adv)) of each example, shape [B]; gradients flow through both arguments,
    as in the reference (which passes the clean softmax as KLDivLoss's target without detaching it)."""
    clean_log_probs = tf.nn.log_softmax(tf.cast(clean_logits, tf.float32), axis=-1)
    adv_log_probs = tf.nn.log_softmax(tf.cast(adv_logits, tf.float32), axis=-1)
    return tf.reduce_sum(tf.exp(clean_log_probs) * (clean_log_probs - adv_log_probs), axis=-1)


def trades_loss(labels, clean_logits, adv_logits, beta=6.0):
    """Per-example TRADES loss CE(labels, clean) + beta * KL(clean || adv), shape [B]; the batch mean of this
    is the reference's loss (its KL is summed over the batch and divided by the batch size)."""
    return losses.class_cross_entropy(labels, clean_logits) + beta * trades_kl(clean_logits, adv_logits)


def trades_adversary(forward, x01, *, eps, step_size, steps, norm="linf", seed=0, start_sigma=START_SIGMA,
                     unroll=False):
    """The TRADES inner maximisation: from x + start_sigma * N(0, 1), `steps` projected ascent steps on
    KL(p_clean || p_adv) (sign steps for L-inf, normalised-gradient steps for L2); returns the final iterate.

    The clean distribution is computed once with the same `forward` and held fixed during the search.
    """
    geometry.check_norm(norm)
    check_number("eps", eps, 0.0, strict=False)
    check_number("step_size", step_size, 0.0, strict=True)
    check_number("start_sigma", start_sigma, 0.0, strict=False)
    check_count("steps", steps)
    x = check_images(x01)
    clean_logits = tf.stop_gradient(forward(x)["logits"])

    def kl_to_clean(outputs):
        return trades_kl(clean_logits, outputs["logits"])

    x_start = starts.gaussian_start(x, start_sigma, starts.derived_seed(starts.as_seed(seed), 0))
    run = pgd_run(forward, x, x_start, kl_to_clean, None, eps=eps, step_size=step_size, steps=steps, norm=norm,
                  keep="last", unroll=unroll)
    return tf.stop_gradient(run.x)


