"""Chooses the adversarial example generator used inside the trainer's train_step (--adv)."""

from mocse_tf.errors import UsageError


def make_training_attack(config):
    """None for standard training; adversarial modes arrive with mocse_tf.attacks."""
    if config.adv == "none":
        return None
    raise UsageError(f"--adv={config.adv} is not available in this version; use --adv=none")
