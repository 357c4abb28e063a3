"""Test-wide settings: quiet TensorFlow, the TF backend for Keras, and where the shared real data lives."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CIFAR10_MINI = REPO_ROOT.parent / "shared" / "data" / "cifar10-mini" / "cifar-10-batches-py"


@pytest.fixture
def cifar10_mini_dir():
    """The shared real CIFAR-10 subset; tests using it skip where ../shared is absent."""
    if not CIFAR10_MINI.is_dir():
        pytest.skip(f"real-data check: {CIFAR10_MINI} is absent")
    return CIFAR10_MINI
