"""Shared inputs for the corruption tests: natural-looking uint8 images and a runner for the three ways a
corruption is called (eagerly, inside tf.function, inside tf.data.map with an unknown batch size).

A plain module with a distinctive name rather than a conftest.py: test files that `from conftest import ...`
get whichever conftest module pytest imported last.
"""

import functools
import pathlib
import pickle

import numpy as np
import scipy.ndimage
import tensorflow as tf

CIFAR10_MINI_TEST = (
    pathlib.Path(__file__).resolve().parents[2].parent / "shared/data/cifar10-mini/cifar-10-batches-py/test_batch"
)
NUM_IMAGES = 256


def smooth_random_images(count, seed=0):
    """Blurred colour noise with a bright square, saturated corners and flat patches: uint8 [count, 32, 32, 3]."""
    rng = np.random.RandomState(seed)
    noise = rng.uniform(0, 255, (count, 32, 32, 3))
    images = scipy.ndimage.gaussian_filter(noise, (0, 1.5, 1.5, 0)) * 2.5 - 190
    images[:, 8:20, 10:24] += 60
    images[:, :6, :6] = 255  # flat saturated and black regions: where truncation quirks show
    images[:, -6:, -6:] = 0
    images[:, 24:30, 2:8] = rng.randint(0, 256, (count, 1, 1, 3))
    return np.clip(images, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=None)
def load_clean_images():
    """Real CIFAR-10 test images (the first 256) when ../shared is present, else smooth random images."""
    if CIFAR10_MINI_TEST.is_file():
        with open(CIFAR10_MINI_TEST, "rb") as handle:
            data = pickle.load(handle, encoding="bytes")[b"data"][:NUM_IMAGES]
        return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return smooth_random_images(NUM_IMAGES)


def run_modes(function, images, severity, seed=(0, 0)):
    """{"eager", "tf.function", "tf.data"}: the corruption's uint8 output in each calling mode."""
    seed = tf.constant(seed, tf.int64)
    eager = function(tf.constant(images), severity, seed).numpy()
    graph = tf.function(lambda x: function(x, severity, seed), autograph=False)(tf.constant(images)).numpy()
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(100).map(lambda x: function(x, severity, seed))
    data = np.concatenate(list(dataset.as_numpy_iterator()))
    return {"eager": eager, "tf.function": graph, "tf.data": data}


def assert_same_as_reference(outputs, expected):
    """Every mode's output equals the reference exactly (the message gives the fraction and size of misses)."""
    for mode, got in outputs.items():
        assert got.dtype == np.uint8 and got.shape == expected.shape, (mode, got.dtype, got.shape)
        diff = got.astype(np.int16) - expected
        assert not diff.any(), (
            f"{mode}: {np.mean(diff != 0):.2e} of the values differ from the reference, "
            f"by {diff.min()}..{diff.max()}"
        )
