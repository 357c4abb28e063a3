"""Shared fixtures of the evaluation tests: a tiny exported PreAct-ResNet-18 (SavedModel and .keras) and a small
folder in the released CIFAR-10-C layout."""

import numpy as np
import pytest

from mocse_tf.data import load_arrays

NUM_IMAGES = 30  # clean images per severity in the folder fixtures


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{"saved_model": path, "keras": path}: the same untrained width-4 PreAct-ResNet-18 in both formats."""
    import keras

    from mocse_tf.export import export_saved_model
    from mocse_tf.models import preact_resnet18

    keras.utils.set_random_seed(3)
    network = preact_resnet18(width=4)
    base = tmp_path_factory.mktemp("models")
    keras_path = base / "tiny.keras"
    network.save(keras_path)
    return {"saved_model": export_saved_model(network, str(base / "tiny_run")), "keras": str(keras_path)}


@pytest.fixture(scope="session")
def synthetic_test():
    return load_arrays("synthetic", "test", num_examples=NUM_IMAGES)


def write_released_layout(folder, images_by_file, labels):
    """Writes <file>.npy arrays and labels.npy the way the CIFAR-10-C release stores them."""
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, images in images_by_file.items():
        np.save(folder / file_name, images)
    np.save(folder / "labels.npy", labels)
    return folder


@pytest.fixture
def released_folder(tmp_path, synthetic_test):
    """A CIFAR-10-C layout folder for gaussian_noise and frosted_glass_blur (glass_blur.npy): each severity's block
    is the clean images shifted by the severity, so every block differs and is easy to recompute."""
    clean = synthetic_test.images
    stacked = lambda offset: np.concatenate([(clean.astype(np.int64) + offset * s) % 256 for s in range(1, 6)])
    arrays = {"gaussian_noise.npy": stacked(1).astype(np.uint8), "glass_blur.npy": stacked(7).astype(np.uint8)}
    labels = np.tile(synthetic_test.labels.astype(np.uint8), 5)
    return write_released_layout(tmp_path / "CIFAR-10-C", arrays, labels)
