"""The public corruption API: names, groups, argument checks, the three calling modes for all 19 corruptions,
seeding, and the shared uint8 <-> float helpers."""

import numpy as np
import pytest
import tensorflow as tf

from mocse_tf import corruptions
from mocse_tf.corruptions import common
from mocse_tf.errors import UsageError

TFDS_NAMES = (
    "gaussian_noise shot_noise impulse_noise defocus_blur frosted_glass_blur motion_blur zoom_blur snow frost fog "
    "brightness contrast elastic pixelate jpeg_compression speckle_noise gaussian_blur spatter saturate"
).split()
RANDOM = sorted(set(TFDS_NAMES) - corruptions.DETERMINISTIC)


# ------------------------------------------------------------------------------------------------ names


def test_names_and_groups():
    assert corruptions.ALL == tuple(TFDS_NAMES)
    assert corruptions.BENCHMARK == tuple(TFDS_NAMES[:15]) and corruptions.EXTRA == tuple(TFDS_NAMES[15:])
    assert list(corruptions.DISPLAY_GROUPS) == ["Noise", "Blur", "Weather", "Digital"]
    grouped = [name for names in corruptions.DISPLAY_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(TFDS_NAMES) and len(grouped) == 19
    assert corruptions.DISPLAY_GROUPS["Noise"] == ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
    assert corruptions.DISPLAY_GROUPS["Digital"][-1] == "saturate"
    assert corruptions.DETERMINISTIC == {
        "defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression", "gaussian_blur",
        "saturate",
    }
    assert len(RANDOM) == 11


def test_generator_names_and_aliases():
    assert corruptions.GENERATOR_NAMES["frosted_glass_blur"] == "glass_blur"
    assert corruptions.GENERATOR_NAMES["elastic"] == "elastic_transform"
    assert all(corruptions.GENERATOR_NAMES[n] == n for n in TFDS_NAMES if n not in ("frosted_glass_blur", "elastic"))
    assert corruptions.canonical_name("glass_blur") == "frosted_glass_blur"
    assert corruptions.canonical_name("elastic_transform") == "elastic"
    assert corruptions.canonical_name(" Gaussian_Noise ") == "gaussian_noise"
    for name in TFDS_NAMES:
        assert corruptions.canonical_name(name) == name


@pytest.mark.parametrize("bad", ["gaussian", "motion-blur", "", None, 3])
def test_unknown_name_lists_the_valid_ones(bad):
    with pytest.raises(UsageError, match="unknown corruption") as info:
        corruptions.corrupt(np.zeros((1, 32, 32, 3), np.uint8), bad, 1)
    assert "frosted_glass_blur" in str(info.value) and "glass_blur = frosted_glass_blur" in str(info.value)


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("severity", [0, 6, -1, 2.0, "3", True, None, np.float32(1)])
def test_bad_severity(severity):
    with pytest.raises(UsageError, match="severity") as info:
        corruptions.corrupt(np.zeros((1, 32, 32, 3), np.uint8), "contrast", severity)
    assert repr(severity) in str(info.value) or str(severity) in str(info.value)


def test_numpy_integer_severity_is_accepted():
    out = corruptions.corrupt(np.zeros((1, 32, 32, 3), np.uint8), "contrast", np.int64(2))
    assert out.dtype == tf.uint8


@pytest.mark.parametrize(
    "images,received",
    [
        (np.zeros((2, 32, 32, 3), np.float32), "float32"),
        (tf.zeros((2, 32, 32, 3), tf.float32), "float32"),
        (np.zeros((2, 28, 28, 3), np.uint8), "(2, 28, 28, 3)"),
        (np.zeros((2, 32, 32, 1), np.uint8), "(2, 32, 32, 1)"),
        (np.zeros((32, 32), np.uint8), "(32, 32)"),
        (tf.zeros((2, 3, 32, 32), tf.uint8), "(2, 3, 32, 32)"),
    ],
)
def test_bad_images_say_what_was_received(images, received):
    with pytest.raises(UsageError, match="uint8 \\[B, 32, 32, 3\\]|shape \\[B, 32, 32, 3\\]") as info:
        corruptions.corrupt(images, "brightness", 1)
    assert received in str(info.value)


def test_bad_seed():
    with pytest.raises(UsageError, match="seed"):
        corruptions.corrupt(np.zeros((1, 32, 32, 3), np.uint8), "gaussian_noise", 1, seed=tf.constant([1.0, 2.0]))
    with pytest.raises(UsageError, match="seed"):
        corruptions.corrupt(np.zeros((1, 32, 32, 3), np.uint8), "gaussian_noise", 1, seed=tf.constant([1, 2, 3]))


# ------------------------------------------------------------------------------------------------ calling


def sample_batch(count=4):
    rng = np.random.RandomState(0)
    base = rng.randint(0, 256, (count, 4, 4, 3)).astype(np.float64)
    images = tf.image.resize(base, [32, 32], method="bilinear").numpy()
    return np.clip(images + rng.normal(0, 8, images.shape), 0, 255).astype(np.uint8)


def test_every_corruption_eagerly_and_in_tf_data_with_unknown_batch():
    """All 19 (this also runs part B's), each at one severity (cycling 1..5), in both modes; same results."""
    images = sample_batch(4)
    for index, name in enumerate(corruptions.ALL):
        severity = index % 5 + 1
        eager = corruptions.corrupt(images, name, severity, seed=3)
        assert eager.dtype == tf.uint8 and eager.shape == (4, 32, 32, 3), name
        dataset = tf.data.Dataset.from_tensor_slices(images).batch(4)
        assert dataset.element_spec.shape[0] is None
        dataset = dataset.map(lambda x, n=name, s=severity: corruptions.corrupt(x, n, s, seed=3))
        assert dataset.element_spec.shape.as_list() == [None, 32, 32, 3], name
        (batched,) = list(dataset.as_numpy_iterator())
        np.testing.assert_array_equal(batched, eager.numpy(), err_msg=name)
        if name != "brightness":  # brightness may leave saturated-V images unchanged
            assert (batched != images).any(), name


def test_numpy_tensor_single_image_and_seed_forms_agree():
    images = sample_batch(3)
    from_numpy = corruptions.corrupt(images, "glass_blur", 2, seed=9).numpy()
    from_tensor = corruptions.corrupt(tf.constant(images), "frosted_glass_blur", 2, seed=9).numpy()
    from_seed_tensor = corruptions.corrupt(images, "glass_blur", 2, seed=tf.constant([9, 0])).numpy()
    np.testing.assert_array_equal(from_numpy, from_tensor)
    np.testing.assert_array_equal(from_numpy, from_seed_tensor)
    single = corruptions.corrupt(images[0], "contrast", 3)
    assert single.shape == (32, 32, 3)
    np.testing.assert_array_equal(single.numpy(), corruptions.corrupt(images, "contrast", 3)[0].numpy())


def test_tf_function_with_tensor_seed():
    images = tf.constant(sample_batch(2))
    traced = tf.function(lambda x, seed: corruptions.corrupt(x, "impulse_noise", 5, seed=seed), autograph=False)
    a = traced(images, tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(a, corruptions.corrupt(images, "impulse_noise", 5, seed=tf.constant([1, 2])).numpy())
    assert (a != traced(images, tf.constant([1, 3], tf.int64)).numpy()).any()


@pytest.mark.parametrize("name", RANDOM)
def test_random_corruptions_depend_only_on_the_seed(name):
    images = sample_batch(2)
    a = corruptions.corrupt(images, name, 3, seed=5).numpy()
    b = corruptions.corrupt(images, name, 3, seed=5).numpy()
    c = corruptions.corrupt(images, name, 3, seed=6).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any(), f"{name}: seeds 5 and 6 gave the same images"


@pytest.mark.parametrize("name", sorted(corruptions.DETERMINISTIC))
def test_deterministic_corruptions_ignore_the_seed(name):
    images = sample_batch(2)
    np.testing.assert_array_equal(
        corruptions.corrupt(images, name, 4, seed=1).numpy(), corruptions.corrupt(images, name, 4, seed=2).numpy()
    )


# ------------------------------------------------------------------------------------------------ helpers


def test_from_unit_float_truncates_after_clipping():
    x = tf.constant([-0.5, 0.0, 0.5, 0.9999, 1.0, 7.0], tf.float64)
    # 0.5 * 255 = 127.5 -> 127; 0.9999 * 255 = 254.97 -> 254 (floor, not rounding).
    np.testing.assert_array_equal(common.from_unit_float(x).numpy(), [0, 0, 127, 254, 255, 255])
    np.testing.assert_array_equal(
        common.from_pixel_float(tf.constant([-3.0, 12.99, 254.999, 300.0])).numpy(), [0, 12, 254, 255]
    )


def test_unit_float_round_trip_is_exact_in_every_mode():
    levels = tf.constant(np.arange(256, dtype=np.uint8))
    for dtype in (tf.float32, tf.float64):
        expected = (np.arange(256) / np.float64(255)).astype(dtype.as_numpy_dtype)
        eager = common.to_unit_float(levels, dtype)
        graph = tf.function(lambda x, d=dtype: common.to_unit_float(x, d), autograph=False)(levels)
        np.testing.assert_array_equal(eager.numpy(), expected)
        np.testing.assert_array_equal(graph.numpy(), expected)
        np.testing.assert_array_equal(common.from_unit_float(graph).numpy(), np.arange(256))


def test_divide_is_exact_inside_tf_function():
    """Grappler turns x / constant into x * (1 / constant) inside tf.function (off by one ulp for some x);
    common.divide must not be rewritten."""
    x = tf.constant(np.random.RandomState(0).rand(10000))
    plain = tf.function(lambda v: v / 27.0, autograph=False)(x).numpy()
    exact = tf.function(lambda v: common.divide(v, 27.0), autograph=False)(x).numpy()
    np.testing.assert_array_equal(exact, x.numpy() / 27.0)
    assert (plain != x.numpy() / 27.0).any(), "TF no longer rewrites divisions: common.divide may be simplified"


def test_split_seed_gives_distinct_seeds():
    a, b = common.split_seed(7, 2)
    assert (a.numpy() != b.numpy()).any()


def test_map_in_chunks_equals_a_whole_batch_call():
    images = tf.constant(np.random.RandomState(0).randint(0, 256, (300, 32, 32, 3)).astype(np.uint8))
    inverted = common.map_in_chunks(lambda chunk: 255 - chunk, images, chunk_size=128)
    np.testing.assert_array_equal(inverted.numpy(), 255 - images.numpy())
    assert common.map_in_chunks(lambda chunk: chunk, images[:0]).shape == (0, 32, 32, 3)
