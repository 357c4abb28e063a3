"""What attacks maximise: per-example losses of a network's outputs, and the per-example success test.

Every loss here is one value per example (shape [B]) that the attack increases. Targeted objectives are
negated losses towards the target class (or, for DLR, Croce & Hein's targeted DLR), so one ascent loop serves
both. Attacks on MoCSE read the aggregate class logits in outputs["logits"] unless the objective names the
experts.
"""

import tensorflow as tf

from mocse_tf import losses
from mocse_tf.labels import as_labels, top1_correct
from mocse_tf.errors import UsageError, check_choice

# ce: cross-entropy of the class logits (for MoCSE, the aggregate). mocse_total: the MoCSE training loss
# CE + bce_weight * expert BCE (plain CE for a network without experts). expert_bce: the experts' own
# one-vs-rest BCE alone. dlr: the Difference of Logits Ratio of Croce & Hein (2020). margin_dlr and margin_cw:
# MoCSE-adaptive losses on the experts' margins m_k = z_true_k - z_false_k (see `expert_margins`).
# cw: the Carlini-Wagner margin of the class logits.
OBJECTIVES = ("ce", "mocse_total", "expert_bce", "dlr", "cw", "margin_dlr", "margin_cw")
# The objectives that need outputs["expert_logits"] (MoCSE networks only).
EXPERT_OBJECTIVES = ("expert_bce", "margin_dlr", "margin_cw")

# Keeps DLR finite when the top logits tie (the reference implementation's constant).
_DLR_TINY = 1e-12


def _logit_of(logits, labels):
    """logits[b, labels[b]] for every example, shape [B]."""
    return tf.gather(logits, as_labels(labels), axis=1, batch_dims=1)


def _check_classes(logits, needed, what):
    num_classes = logits.shape[-1]
    if num_classes is not None and num_classes < needed:
        raise UsageError(f"{what} needs at least {needed} classes, the logits have {num_classes}; use objective 'ce'")


def dlr_loss(labels, logits):
    """Untargeted DLR: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3), with z_pi sorted decreasingly; shape [B].

    Positive exactly when the example is misclassified; invariant to shifting and scaling the logits, so a
    network cannot hide behind large or saturated logits as it can with cross-entropy.
    """
    logits = tf.cast(logits, tf.float32)
    _check_classes(logits, 3, "the DLR loss")
    top3 = tf.math.top_k(logits, k=3).values
    true_logit = _logit_of(logits, labels)
    true_is_top = top1_correct(logits, labels)
    best_other = tf.where(true_is_top, top3[:, 1], top3[:, 0])
    return -(true_logit - best_other) / (top3[:, 0] - top3[:, 2] + _DLR_TINY)


def targeted_dlr_loss(labels, targets, logits):
    """Targeted DLR: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2), to be maximised; shape [B]."""
    logits = tf.cast(logits, tf.float32)
    _check_classes(logits, 4, "the targeted DLR loss")
    top4 = tf.math.top_k(logits, k=4).values
    margin = _logit_of(logits, labels) - _logit_of(logits, targets)
    return -margin / (top4[:, 0] - 0.5 * (top4[:, 2] + top4[:, 3]) + _DLR_TINY)


def cw_margin_loss(labels, logits, targets=None):
    """Carlini-Wagner margin, to be maximised; shape [B]. Untargeted: max_{i != y} z_i - z_y (positive exactly
    when misclassified); targeted: z_t - z_y. Linear in the logits, so its gradient never vanishes the way a
    softmax's does when probabilities saturate."""
    logits = tf.cast(logits, tf.float32)
    true_logit = _logit_of(logits, labels)
    if targets is not None:
        return _logit_of(logits, targets) - true_logit
    others = tf.where(tf.one_hot(as_labels(labels), tf.shape(logits)[1], on_value=True, off_value=False),
                      tf.constant(-float("inf"), tf.float32), logits)
    return tf.reduce_max(others, axis=1) - true_logit


def expert_margins(expert_logits):
    """Each expert's margin m_k = z_true_k - z_false_k (its log-odds of "class k"), shape [B, N].

    MoCSE-adaptive attacks work on these directly: aggregates such as true_prob squash them through a sigmoid, and
    the DLR of the aggregate then has gradients of 1e-11 .. 0 at margins of +-20 .. +-60, while the DLR or CW loss of
    the margins themselves stays informative at any margin.
    """
    expert_logits = tf.cast(expert_logits, tf.float32)
    return expert_logits[..., 1] - expert_logits[..., 0]


def check_objective(objective):
    check_choice("attack objective", objective, OBJECTIVES)


def _expert_logits(outputs, objective):
    if "expert_logits" not in outputs:
        raise UsageError(
            f"objective {objective!r} needs outputs['expert_logits'] [B, N, 2] (a MoCSE network); this network "
            f"returns {sorted(outputs)}; use objective 'ce' or 'dlr'"
        )
    return outputs["expert_logits"]


def attack_loss_fn(objective, labels, targets=None, bce_weight=1.0):
    """Returns `loss(outputs) -> [B]` that the attack maximises.

    Untargeted (targets None): the objective at the true labels. Targeted: minus the objective at the target
    labels (so the target becomes more likely), except DLR, which uses the targeted DLR of labels and targets, and
    the margin objectives (targeted DLR, or z_t - z_y, of the experts' margins).
    """
    check_objective(objective)

    def loss(outputs):
        if objective in ("margin_dlr", "margin_cw"):
            margins = expert_margins(_expert_logits(outputs, objective))
            if objective == "margin_cw":
                return cw_margin_loss(labels, margins, targets)
            return dlr_loss(labels, margins) if targets is None else targeted_dlr_loss(labels, targets, margins)
        if objective == "cw":
            return cw_margin_loss(labels, outputs["logits"], targets)
        if objective == "dlr":
            if targets is None:
                return dlr_loss(labels, outputs["logits"])
            return targeted_dlr_loss(labels, targets, outputs["logits"])
        wanted = labels if targets is None else targets
        if objective == "ce":
            value = losses.class_cross_entropy(wanted, outputs["logits"])
        elif objective == "mocse_total":
            value = losses.mocse_total_loss(wanted, outputs, bce_weight)
        else:
            value = losses.expert_binary_cross_entropy(wanted, _expert_logits(outputs, objective))
        return value if targets is None else -value

    return loss


def attack_success_fn(labels, targets=None):
    """Returns `success(outputs) -> bool [B]`: misclassified (untargeted) or classified as the target."""

    def success(outputs):
        if targets is None:
            return tf.logical_not(top1_correct(outputs["logits"], labels))
        return top1_correct(outputs["logits"], targets)

    return success


def ranked_targets(logits, rank):
    """The class with the (rank + 1)-th highest logit for each example: rank 1 is the runner-up, the usual first
    target of targeted APGD-DLR (AutoAttack tries ranks 1 .. 9); labels [B]."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise UsageError(f"rank must be an integer >= 1 (1 = runner-up class), got {rank!r}")
    num_classes = logits.shape[-1]
    if num_classes is not None and rank >= num_classes:
        raise UsageError(f"rank {rank} needs more than {rank} classes, the logits have {num_classes}")
    return as_labels(tf.math.top_k(logits, k=rank + 1).indices[:, rank])
