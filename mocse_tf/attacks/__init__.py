"""Adversarial attacks on images in [0, 1], shared by adversarial training and adversarial evaluation:
FGSM, PGD and APGD (L-inf and L2), TRADES, the gradient-free Square attack, FAB-T, and the losses they
maximise."""

from mocse_tf.attacks.apgd import apgd, apgd_checkpoints, apgd_targeted
from mocse_tf.attacks.dispatch import KINDS, TRAINING_KINDS, Attack, make_attack, make_training_attack
from mocse_tf.attacks.fab import fab_attack
from mocse_tf.attacks.forward import as_output_dict, computes_in_float32, float32_compute, model_forward
from mocse_tf.attacks.geometry import NORMS, project
from mocse_tf.attacks.objectives import (
    EXPERT_OBJECTIVES, OBJECTIVES, attack_loss_fn, attack_success_fn, cw_margin_loss, dlr_loss, expert_margins,
    ranked_targets, targeted_dlr_loss,
)
from mocse_tf.attacks.pgd import fgsm, pgd
from mocse_tf.attacks.selection import KEEPS
from mocse_tf.attacks.square import square_attack
from mocse_tf.attacks.trades import trades_adversary, trades_kl, trades_loss

__all__ = [
    "Attack", "EXPERT_OBJECTIVES", "KEEPS", "KINDS", "NORMS", "OBJECTIVES", "TRAINING_KINDS", "apgd",
    "apgd_checkpoints", "apgd_targeted", "as_output_dict", "attack_loss_fn", "attack_success_fn", "computes_in_float32",
    "cw_margin_loss", "dlr_loss", "expert_margins", "fab_attack", "fgsm", "float32_compute", "make_attack",
    "make_training_attack", "model_forward", "pgd", "project", "ranked_targets", "square_attack",
    "targeted_dlr_loss", "trades_adversary", "trades_kl", "trades_loss",
]
