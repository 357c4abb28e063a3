"""Model builders: PreAct-ResNet-18 and MoCSE, and `build_network` that picks one by name."""

from mocse_tf.errors import check_choice
from mocse_tf.models.mocse import AGGREGATORS, DEFAULT_EXPERT_WIDTH, check_aggregate, mocse
from mocse_tf.models.preact_resnet import preact_resnet18

ARCHS = ("preact_resnet18", "mocse")


def check_arch(arch):
    return check_choice("arch", arch, ARCHS)


def build_network(arch, num_classes=10, width=None, aggregate="margin"):
    """Builds a network by name; width None means the architecture's default (64, or 16 per MoCSE expert)."""
    check_arch(arch)
    if arch == "preact_resnet18":
        return preact_resnet18(num_classes=num_classes, width=64 if width is None else width)
    if arch == "mocse":
        return mocse(num_classes=num_classes, expert_width=DEFAULT_EXPERT_WIDTH if width is None else width,
                     aggregate=aggregate)


__all__ = ["AGGREGATORS", "ARCHS", "DEFAULT_EXPERT_WIDTH", "build_network", "check_aggregate", "check_arch", "mocse",
           "preact_resnet18"]
