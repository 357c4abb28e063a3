"""mocse_tf.models.complexity: the counts behind README's parameter table, checked against that table."""

import re

import pytest

from mocse_tf.models import complexity, mocse, preact_resnet18
from tests.conftest import REPO_ROOT


def readme_row(label):
    """(parameters in M, MACs in G) of the README table row that starts with `label`."""
    for line in (REPO_ROOT / "README.md").read_text().splitlines():
        if line.startswith(f"| {label} |") or line.startswith(f"| {label} ("):
            params, macs = re.findall(r"\| ([\d.]+) ([MG]) ", line + " ")[:2]
            return params[0], macs[0]
    raise AssertionError(f"README has no row {label!r}")


@pytest.mark.parametrize("label, build", [
    ("PreAct-ResNet-18, width 64", lambda: preact_resnet18(num_classes=10, width=64)),
    ("MoCSE, expert width 16", lambda: mocse(num_classes=10, expert_width=16)),
    ("MoCSE, expert width 8", lambda: mocse(num_classes=10, expert_width=8)),
])
def test_readme_table_comes_from_the_counter(label, build):
    network = build()
    params, macs = complexity.trainable_parameters(network), complexity.multiply_accumulates(network)
    if label.startswith("PreAct"):  # the paper's figures: 11.17 M parameters, 0.556 G multiply-accumulates
        assert round(params / 1e6, 2) == 11.17 and round(macs / 1e9, 3) == 0.556
    readme_params, readme_macs = readme_row(label)
    assert f"{params / 1e6:.{len(readme_params.split('.')[1])}f}" == readme_params
    assert f"{macs / 1e9:.{len(readme_macs.split('.')[1])}f}" == readme_macs
