"""Augmentation policies: exact crop/flip and cutout geometry, and no CIFAR-10-C corruption in any policy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mocse_tf.data import AUGMENT_POLICIES, augment, describe_policy
from mocse_tf.errors import UsageError


def _seed(value):
    return tf.constant([value, 17], tf.int64)


def test_policy_names_and_texts():
    assert AUGMENT_POLICIES == ("none", "standard", "augmented")
    assert "4 px" in describe_policy("standard") and "flip" in describe_policy("standard")
    text = describe_policy("augmented")
    for part in ("RandAugment", "2 different ops", "RandomRotation", "Solarization", "16x16", "cutout"):
        assert part in text
    with pytest.raises(UsageError, match="unknown augmentation policy 'autoaugment'; choose one of none, "
                                         "standard, augmented"):
        describe_policy("autoaugment")


def test_no_policy_uses_a_benchmark_corruption():
    assert augment.BatchAugmenter("none").keras_layers == []
    assert augment.BatchAugmenter("standard").keras_layers == []
    layers = augment.BatchAugmenter("augmented").keras_layers
    layer_types = {type(layer).__name__ for layer in layers}
    assert layer_types == {"RandomRotation", "RandomShear", "RandomTranslation", "RandomPosterization",
                           "Solarization"}
    assert not layer_types & set(augment.FORBIDDEN_LAYER_TYPES)
    # The forbidden list really names Keras layers (a typo would make the check above vacuous) ...
    for name in augment.FORBIDDEN_LAYER_TYPES:
        assert hasattr(keras.layers, name), name
    # ... and covers every brightness / contrast / blur / noise / elastic op Keras offers.
    words = ("Brightness", "Contrast", "Equaliz", "Blur", "Noise", "Elastic", "Sharpness", "Saturation", "Jitter")
    for name in dir(keras.layers):
        if any(word in name for word in words):
            assert name in augment.FORBIDDEN_LAYER_TYPES, name
    for layer in layers:
        config = layer.get_config()
        if type(layer).__name__ == "Solarization":
            assert tuple(config["addition_factor"]) == (0, 0)  # an addition would be a brightness shift
        if "interpolation" in config:
            assert config["interpolation"] == "nearest"  # bilinear resampling low-pass filters (blurs)


def _crop_flip_outcomes(image):
    """All 9 x 9 x 2 results of zero-padding 4, cropping 32x32 and optionally flipping one image (numpy)."""
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    outcomes = {}
    for top in range(9):
        for left in range(9):
            crop = padded[top:top + 32, left:left + 32]
            outcomes[crop.tobytes()] = (top, left, False)
            outcomes[crop[:, ::-1].tobytes()] = (top, left, True)
    return outcomes


def test_crop_and_flip_give_only_the_expected_outcomes_with_zero_padding():
    image = np.random.default_rng(0).integers(1, 256, (32, 32, 3), dtype=np.uint8)  # no zeros: pad is visible
    outcomes = _crop_flip_outcomes(image)
    assert len(outcomes) == 162
    batch = tf.constant(np.repeat(image[None], 600, axis=0))
    results = augment.pad_crop_flip(batch, _seed(1)).numpy()
    assert results.dtype == np.uint8 and results.shape == (600, 32, 32, 3)
    seen = [outcomes[result.tobytes()] for result in results]  # KeyError = an impossible output
    assert len(set(seen)) > 140  # 600 uniform draws cover about 157 of the 162 outcomes
    assert {flip for _, _, flip in seen} == {False, True}
    # Padding is zeros: a shift by the full 4 px shows a zero band of exactly 4 rows.
    top_left = np.pad(image, ((4, 4), (4, 4), (0, 0)))[:32, :32]
    assert (top_left[:4] == 0).all() and (top_left[4:, 4:] > 0).all()
    np.testing.assert_array_equal(augment.pad_crop_flip(batch, _seed(1)), results)  # same seed, same crops


def test_cutout_zeroes_one_clipped_16x16_square():
    images = tf.fill([400, 32, 32, 3], tf.constant(200, tf.uint8))
    results = augment.cutout(images, _seed(2)).numpy()
    assert set(np.unique(results)) == {0, 200}
    sizes = set()
    for result in results:
        erased = (result == 0).all(-1)
        assert ((result == 0).any(-1) == erased).all()  # all channels together
        rows, cols = np.flatnonzero(erased.any(1)), np.flatnonzero(erased.any(0))
        # A solid rectangle, 8 to 16 px a side, and 16 where it does not touch the border.
        assert erased.sum() == rows.size * cols.size
        assert rows.size == rows[-1] - rows[0] + 1 and cols.size == cols[-1] - cols[0] + 1
        for hit in (rows, cols):
            assert 8 <= hit.size <= 16
            if hit[0] > 0 and hit[-1] < 31:
                assert hit.size == 16
        sizes.add((rows.size, cols.size))
    assert (16, 16) in sizes and len(sizes) > 5


def test_augmented_policy_output_is_uint8_and_keeps_images_recognisable():
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    augmenter = augment.BatchAugmenter("augmented", layer_seed=5)
    results = augmenter(tf.constant(np.repeat(image[None], 64, axis=0)), _seed(3)).numpy()
    assert results.dtype == np.uint8 and results.shape == (64, 32, 32, 3)
    assert len({result.tobytes() for result in results}) == 64  # every image augmented differently
    assert (results == 0).all(-1).sum((1, 2)).min() >= 64  # every image has its cutout square (>= 8x8)


def test_each_image_draws_two_different_ops_uniformly():
    # Ops that each add their own power of two make the set of ops an image received readable from its pixels.
    augmenter = augment.BatchAugmenter("augmented")
    augmenter.randaugment_ops = {"identity": tf.identity}
    augmenter.randaugment_ops.update({f"add_{2 ** k}": (lambda x, k=k: x + 2.0 ** k) for k in range(5)})
    codes = augmenter._randaugment(tf.zeros([3000, 32, 32, 3], tf.uint8), _seed(4)).numpy()
    assert (codes == codes[:, :1, :1, :1]).all()  # the same ops for every pixel of an image
    codes = codes[:, 0, 0, 0].astype(np.int64)
    op_counts = np.array([[(code >> k) & 1 for k in range(5)] for code in codes]).sum(1)
    # Two distinct ops out of six: one of them is identity with probability 2/6.
    assert set(op_counts) == {1, 2}
    assert abs(np.mean(op_counts == 1) - 1 / 3) < 0.04
    for k in range(5):
        assert abs(np.mean((codes >> k) & 1) - 1 / 3) < 0.04  # every op drawn by a third of the images
