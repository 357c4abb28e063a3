"""Digital corruptions (brightness, contrast, saturate, JPEG, pixelate) against scikit-image / NumPy / Pillow
re-computations of the generator's steps, in all three calling modes."""

import io

import numpy as np
import pytest
import skimage.color
import tensorflow as tf
from PIL import Image

from mocse_tf.corruptions import digital
from corruption_cases import assert_same_as_reference, load_clean_images, run_modes  # beside this file

SEVERITIES = [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def clean_images():
    """Real CIFAR-10 test images when ../shared is present, else smooth random images (uint8 [256, 32, 32, 3])."""
    return load_clean_images()


# ------------------------------------------------------------------------------------ references (spec steps)


def reference_brightness(image, severity):
    shift = [0.05, 0.1, 0.15, 0.2, 0.3][severity - 1]
    hsv = skimage.color.rgb2hsv(image / 255.0)
    hsv[:, :, 2] = np.clip(hsv[:, :, 2] + shift, 0, 1)
    return np.uint8(np.clip(skimage.color.hsv2rgb(hsv), 0, 1) * 255)


def reference_saturate(image, severity):
    multiplier, addend = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][severity - 1]
    hsv = skimage.color.rgb2hsv(image / 255.0)
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * multiplier + addend, 0, 1)
    return np.uint8(np.clip(skimage.color.hsv2rgb(hsv), 0, 1) * 255)


def reference_contrast(image, severity):
    factor = [0.75, 0.5, 0.4, 0.3, 0.15][severity - 1]
    x = image / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.uint8(np.clip((x - means) * factor + means, 0, 1) * 255)


def reference_jpeg(image, severity):
    quality = [80, 65, 58, 50, 40][severity - 1]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer), np.uint8)


def reference_pixelate(image, severity):
    size = int(32 * [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1])
    small = Image.fromarray(image).resize((size, size), Image.BOX)
    return np.asarray(small.resize((32, 32), Image.BOX), np.uint8)


def apply_reference(reference, images, severity):
    return np.stack([reference(image, severity) for image in images])


def colour_stress_images():
    """Uniform random colours (every hue sector, ties between channels, greys, black, white) plus the clean
    images' worst cases for HSV: exact ties like (a, a, b) and (a, b, b)."""
    rng = np.random.RandomState(7)
    images = rng.randint(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    images[:4, :, :, 1] = images[:4, :, :, 0]  # red == green
    images[4:8, :, :, 2] = images[4:8, :, :, 1]  # green == blue
    images[8:12, :, :, 2] = images[8:12, :, :, 0]  # red == blue
    images[12:14] = images[12:14, :, :, :1]  # greys
    images[14, :16] = 255
    images[14, 16:] = 0
    return images


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("severity", SEVERITIES)
def test_brightness_equals_scikit_image(clean_images, severity):
    images = np.concatenate([clean_images, colour_stress_images()])
    expected = apply_reference(reference_brightness, images, severity)
    assert_same_as_reference(run_modes(digital.brightness, images, severity), expected)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_saturate_equals_scikit_image(clean_images, severity):
    images = np.concatenate([clean_images, colour_stress_images()])
    expected = apply_reference(reference_saturate, images, severity)
    assert_same_as_reference(run_modes(digital.saturate, images, severity), expected)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_contrast_equals_numpy(clean_images, severity):
    expected = apply_reference(reference_contrast, clean_images, severity)
    assert_same_as_reference(run_modes(digital.contrast, clean_images, severity), expected)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_pixelate_equals_pillow(clean_images, severity):
    expected = apply_reference(reference_pixelate, clean_images, severity)
    assert_same_as_reference(run_modes(digital.pixelate, clean_images, severity), expected)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_jpeg_equals_pillow(clean_images, severity):
    """Same libjpeg-turbo settings as Pillow (4:2:0, accurate integer DCT, fancy upsampling): pixel-identical
    here. Different libjpeg builds may differ; this test is where that would show."""
    expected = apply_reference(reference_jpeg, clean_images[:128], severity)
    assert_same_as_reference(run_modes(digital.jpeg_compression, clean_images[:128], severity), expected)


def test_tf_default_jpeg_decoder_would_differ(clean_images):
    """Guards the decoder choice: TF's default (fast) IDCT changes many pixels, the accurate one none."""
    image = clean_images[0]
    encoded = tf.io.encode_jpeg(image, quality=80)
    fast = tf.io.decode_jpeg(encoded).numpy()
    assert np.mean(fast != reference_jpeg(image, 1)) > 0.1
    ours = digital.jpeg_compression(tf.constant(image[None]), 1)[0].numpy()
    np.testing.assert_array_equal(ours, reference_jpeg(image, 1))


def test_contrast_uses_per_channel_means():
    """A red image with a dark half: per-channel means keep green and blue at their constant values (a global
    mean would pull green down to 83 and blue up to 33). A mean summed in float64 can sit a hair below 100/255,
    and truncation then gives 99: the generator's own result."""
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, :, :16, 0] = 200
    image[0, :, :, 1] = 100
    got = digital.contrast(tf.constant(image), 2).numpy()[0]
    np.testing.assert_array_equal(got, reference_contrast(image[0], 2))
    assert set(np.unique(got[:, :, 1])) <= {99, 100} and (got[:, :, 2] == 0).all()
    # Red: mean 100/255, (200/255 - m) * 0.5 + m = 150/255 -> 150, and 50/255 -> 50 (truncation may drop one).
    assert set(np.unique(got[:, :16, 0])) <= {149, 150} and set(np.unique(got[:, 16:, 0])) <= {49, 50}


def test_saturate_leaves_greys_alone_at_low_severities():
    greys = np.broadcast_to(np.arange(256, dtype=np.uint8)[:, None, None, None], (256, 32, 32, 3)).copy()
    for severity in (1, 2, 3):
        np.testing.assert_array_equal(digital.saturate(tf.constant(greys), severity).numpy(), greys)
    # Severities 4 and 5 add to S, which colours greys (hue 0: red).
    tinted = digital.saturate(tf.constant(greys), 5).numpy()
    assert (tinted[200, 0, 0, 0] > tinted[200, 0, 0, 1]) and tinted[200, 0, 0, 1] == tinted[200, 0, 0, 2]


def test_brightness_of_black_is_a_grey_step():
    black = np.zeros((1, 32, 32, 3), np.uint8)
    levels = [digital.brightness(tf.constant(black), s).numpy()[0, 0, 0] for s in SEVERITIES]
    # V = 0 + c -> c * 255 truncated: 0.05 * 255 = 12.75 -> 12, ..., 0.3 * 255 = 76.5 -> 76.
    assert [tuple(v) for v in levels] == [(12,) * 3, (25,) * 3, (38,) * 3, (51,) * 3, (76,) * 3]


def test_pixelate_sizes_and_box_weights():
    assert [int(32 * s) for s in digital.PIXELATE_SCALES] == [30, 28, 27, 24, 20]
    # Pillow's BOX weights are box memberships of the input pixel centres, normalised: not area fractions.
    # From 32 to 20 pixels each output averages one input or two equally (in 22-bit fixed point).
    matrix = digital.pillow_box_matrix(32, 20)
    assert matrix.shape == (20, 32)
    np.testing.assert_array_equal(matrix.sum(axis=1), 2**22)
    assert set(np.unique(matrix)) == {0, 2**21, 2**22}
    np.testing.assert_array_equal(np.count_nonzero(matrix, axis=1)[:5], [2, 1, 2, 1, 2])
    up = digital.pillow_box_matrix(20, 32)  # upscaling: each output copies the input under its centre
    np.testing.assert_array_equal(np.count_nonzero(up, axis=1), 1)
