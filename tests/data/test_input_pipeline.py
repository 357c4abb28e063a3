"""tf.data pipelines: batch shapes and dtypes, order, seeded shuffling per epoch, augmentation determinism."""

import numpy as np
import pytest

from mocse_tf.data import make_pipeline
from mocse_tf.errors import UsageError


@pytest.fixture(scope="module")
def arrays():
    """50 images whose first pixel encodes their index, so every output image can be traced to its source."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(50)
    labels = rng.integers(0, 10, 50).astype(np.int64)
    return images, labels


def _epoch(dataset):
    batches = [(images.numpy(), labels.numpy()) for images, labels in dataset]
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]), batches


def test_evaluation_pipeline_keeps_order_and_the_last_partial_batch(arrays):
    images, labels = arrays
    dataset = make_pipeline(images, labels, 16, training=False)
    out_images, out_labels, batches = _epoch(dataset)
    assert [len(b[1]) for b in batches] == [16, 16, 16, 2]
    assert batches[0][0].dtype == np.uint8 and batches[0][1].dtype == np.int64
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)


def test_training_pipeline_shuffles_each_epoch_deterministically(arrays):
    images, labels = arrays
    dataset = make_pipeline(images, labels, 16, training=True, augment="none", seed=3)
    first_images, first_labels, batches = _epoch(dataset)
    second_images, _, _ = _epoch(dataset)
    assert [b[0].shape for b in batches] == [(16, 32, 32, 3)] * 3  # the partial batch is dropped
    order = first_images[:, 0, 0, 0].astype(np.int64)
    assert len(set(order)) == 48 and not np.array_equal(order, np.arange(48))
    np.testing.assert_array_equal(first_images, images[order])  # images unchanged, labels still match them
    np.testing.assert_array_equal(first_labels, labels[order])
    assert not np.array_equal(first_images, second_images)  # a new order every epoch

    again = make_pipeline(images, labels, 16, training=True, augment="none", seed=3)
    np.testing.assert_array_equal(_epoch(again)[0], first_images)
    np.testing.assert_array_equal(_epoch(again)[0], second_images)
    other_seed = make_pipeline(images, labels, 16, training=True, augment="none", seed=4)
    assert not np.array_equal(_epoch(other_seed)[0], first_images)


def test_training_without_drop_remainder_sees_every_image(arrays):
    images, labels = arrays
    out_images, _, _ = _epoch(make_pipeline(images, labels, 16, training=True, augment="none",
                                            drop_remainder=False, cache=False))
    assert sorted(out_images[:, 0, 0, 0]) == list(range(50))


@pytest.mark.parametrize("policy", ["standard", "augmented"])
def test_augmentation_is_deterministic_by_seed_and_new_each_epoch(arrays, policy):
    images, labels = arrays
    dataset = make_pipeline(images, labels, 25, training=True, augment=policy, seed=7)
    first, first_labels, batches = _epoch(dataset)
    second, _, _ = _epoch(dataset)
    assert first.dtype == np.uint8 and first.shape == (50, 32, 32, 3) and batches[0][1].dtype == np.int64
    again = make_pipeline(images, labels, 25, training=True, augment=policy, seed=7)
    np.testing.assert_array_equal(_epoch(again)[0], first)
    np.testing.assert_array_equal(_epoch(again)[0], second)
    assert not np.array_equal(first, second)
    # Same seed without augmentation: the same order and labels, the images before augmentation.
    plain, plain_labels, _ = _epoch(make_pipeline(images, labels, 25, training=True, augment="none", seed=7))
    np.testing.assert_array_equal(first_labels, plain_labels)
    assert np.mean(first != plain) > 0.3


@pytest.mark.parametrize(
    "change, expected",
    [
        (dict(images=np.zeros((4, 32, 32, 3), np.float32)), "uint8 \\[N, 32, 32, 3\\], got float32"),
        (dict(images=np.zeros((4, 28, 28, 1), np.uint8)), "got uint8 \\[4, 28, 28, 1\\]"),
        (dict(labels=np.zeros(3, np.int64)), "labels must be integers \\[N\\] with N = 4"),
        (dict(batch_size=0), "batch size must be a positive integer, got 0"),
        (dict(batch_size=2.5), "batch size must be a positive integer, got 2.5"),
        (dict(augment="mixup"), "unknown augmentation policy 'mixup'"),
        (dict(seed=-1), "seed must be a non-negative integer, got -1"),
        (dict(batch_size=8), "4 training images cannot fill one batch of 8"),
    ],
)
def test_bad_inputs_raise_one_clear_error(change, expected):
    arguments = dict(images=np.zeros((4, 32, 32, 3), np.uint8), labels=np.zeros(4, np.int64), batch_size=2,
                     augment="standard")
    arguments.update(change)
    with pytest.raises(UsageError, match=expected):
        make_pipeline(arguments.pop("images"), arguments.pop("labels"), arguments.pop("batch_size"), training=True,
                      **arguments)
