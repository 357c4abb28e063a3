"""Registers the attack tests' session fixture."""

from tests.attacks.attack_models import trained_net  # noqa: F401
