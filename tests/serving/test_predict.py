"""bin/predict and mocse_tf.prediction: image reading, class names, outputs against the Keras model, errors."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from mocse_tf import export, files, prediction
from mocse_tf.errors import UsageError
from mocse_tf.models import mocse, preact_resnet18
from tests.cli_helpers import run_tool

CLASS_NAMES = ["cat", "dog", "emu"]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny 3-class MoCSE exported as a TF Serving base folder (with class_names.json) and as .keras."""
    keras.utils.set_random_seed(1)
    root = tmp_path_factory.mktemp("predict")
    network = mocse(num_classes=len(CLASS_NAMES), expert_width=2)
    base = root / "saved_models" / "tiny_mocse"
    export.export_saved_model(network, str(base))
    (base / "class_names.json").write_text(json.dumps(CLASS_NAMES))
    keras_path = root / "plain" / "tiny_mocse.keras"
    files.save_keras(network, str(keras_path))
    return {"network": network, "base": base, "keras": keras_path}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Files of several sizes and colour modes, plus broken ones."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(2)
    paths = {
        "photo.jpg": Image.fromarray(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)),
        "alpha.png": Image.fromarray(rng.integers(0, 256, (32, 32, 4), dtype=np.uint8), "RGBA"),
        "gray.png": Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8), "L"),
        "exact.png": Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)),
    }
    for name, image in paths.items():
        image.save(root / name)
    (root / "not_an_image.png").write_bytes(b"this is text, not a PNG")
    whole = (root / "exact.png").read_bytes()
    (root / "truncated.png").write_bytes(whole[: len(whole) // 2])
    return root


def _probabilities(network, pixels):
    logits = keras.ops.convert_to_numpy(network(pixels.astype(np.float32), training=False)["logits"])
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# --- reading images ---------------------------------------------------------------------------------------

def test_exact_size_rgb_png_is_read_unchanged(images):
    pixels, notes = prediction.read_image(str(images / "exact.png"))
    np.testing.assert_array_equal(pixels, np.asarray(Image.open(images / "exact.png")))
    assert notes == []


def test_any_size_is_resized_to_32x32_with_a_note(tmp_path):
    path = tmp_path / "flat.png"
    Image.new("RGB", (300, 200), (10, 200, 30)).save(path)
    pixels, notes = prediction.read_image(str(path))
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    assert (pixels == [10, 200, 30]).all()  # a flat colour stays that colour through resampling
    assert notes == ["resized from 300x200 to 32x32 (aspect ratio not kept)"]


def test_grayscale_becomes_three_equal_channels(images):
    pixels, notes = prediction.read_image(str(images / "gray.png"))
    assert pixels.shape == (32, 32, 3)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert notes[0] == "converted L to RGB (grayscale copied to 3 channels)"


def test_transparency_is_composited_on_white(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:, :16] = [200, 0, 0, 255]  # opaque red on the left, fully transparent black on the right
    rgba[:, 16:] = [0, 0, 0, 0]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "half.png")
    pixels, notes = prediction.read_image(str(tmp_path / "half.png"))
    assert (pixels[:, :16] == [200, 0, 0]).all()
    assert (pixels[:, 16:] == 255).all()
    assert notes == ["converted RGBA to RGB (transparency composited on white)"]


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((32, 32), 32896, np.uint16)).save(tmp_path / "deep.png")  # 32896 / 65535 * 255 = 128
    pixels, _ = prediction.read_image(str(tmp_path / "deep.png"))
    assert (pixels == 128).all()


@pytest.mark.parametrize("name, message", [
    ("missing.png", "does not exist"),
    ("not_an_image.png", "cannot read image"),
    ("truncated.png", "cannot read image"),
    (".", "is a folder"),
])
def test_bad_images_raise_usage_errors_naming_the_file(images, name, message):
    path = str(images / name)
    with pytest.raises(UsageError, match=message) as caught:
        prediction.read_image(path)
    assert repr(path) in str(caught.value)


# --- class names ------------------------------------------------------------------------------------------

def test_class_names_flag_takes_a_list_or_a_json_file(tmp_path):
    assert prediction.parse_class_names("cat, dog,emu") == CLASS_NAMES
    (tmp_path / "names.json").write_text(json.dumps({"class_names": CLASS_NAMES}))
    assert prediction.parse_class_names(str(tmp_path / "names.json")) == CLASS_NAMES
    with pytest.raises(UsageError, match="neither an existing JSON file"):
        prediction.parse_class_names(str(tmp_path / "absent.json"))
    (tmp_path / "bad.json").write_text(json.dumps([1, 2, 3]))
    with pytest.raises(UsageError, match="JSON list of class-name strings"):
        prediction.parse_class_names(str(tmp_path / "bad.json"))


def test_class_names_file_is_found_beside_the_version_folder(models):
    version = models["base"] / "1"
    assert prediction.find_class_names_file(str(version)) == str(models["base"] / "class_names.json")
    assert prediction.find_class_names_file(str(models["keras"])) is None


# --- predictions ------------------------------------------------------------------------------------------

def test_predict_files_on_keras_file_matches_the_network(models, images):
    paths = [str(images / n) for n in ("photo.jpg", "alpha.png", "gray.png", "exact.png")]
    result = prediction.predict_files(str(models["keras"]), paths, top_k=2, class_names="a,b,c")
    pixels = np.stack([prediction.read_image(p)[0] for p in paths])
    expected = _probabilities(models["network"], pixels)
    assert result["class_names"] == ["a", "b", "c"]
    for i, entry in enumerate(result["predictions"]):
        assert len(entry["top"]) == 2
        top_ids = [t["class_id"] for t in entry["top"]]
        assert top_ids == list(np.argsort(-expected[i])[:2])
        for top in entry["top"]:
            assert abs(top["probability"] - expected[i, top["class_id"]]) < TOLERANCE
        assert [e["class_id"] for e in entry["experts"]] == [0, 1, 2]
        assert all(0.0 < e["confidence"] < 1.0 for e in entry["experts"])


def test_plain_classifier_has_no_expert_section(tmp_path, images):
    keras.utils.set_random_seed(4)
    path = files.save_keras(preact_resnet18(num_classes=5, width=4), str(tmp_path / "resnet.keras"))
    result = prediction.predict_files(path, [str(images / "exact.png")], top_k=10)
    entry = result["predictions"][0]
    assert "experts" not in entry
    assert len(entry["top"]) == 5  # top_k larger than the class count shows every class
    assert sorted(t["class_name"] for t in entry["top"]) == [f"class_{k}" for k in range(5)]  # no names given
    probabilities = [t["probability"] for t in entry["top"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert abs(sum(probabilities) - 1.0) < 1e-5


def test_wrong_number_of_class_names_and_bad_arguments_are_usage_errors(models, images):
    image = [str(images / "exact.png")]
    with pytest.raises(UsageError, match="gives 2 class names but the model has 3 classes"):
        prediction.predict_files(str(models["keras"]), image, class_names="a,b")
    with pytest.raises(UsageError, match="`top_k` must be a positive integer, got 0"):
        prediction.predict_files(str(models["keras"]), image, top_k=0)
    with pytest.raises(UsageError, match="no images given"):
        prediction.predict_files(str(models["keras"]), [])
    with pytest.raises(UsageError, match="neither a SavedModel folder"):
        prediction.predict_files(str(images), image)


def test_bin_predict_json_end_to_end_on_saved_model(models, images):
    paths = [images / "photo.jpg", images / "gray.png"]
    result = run_tool("predict", "--model", models["base"], "--json", "--top_k=3", *paths)
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    assert document["model"] == str(models["base"] / "1")
    assert document["class_names"] == CLASS_NAMES  # from class_names.json beside the export
    expected = _probabilities(models["network"], np.stack([prediction.read_image(str(p))[0] for p in paths]))
    for i, entry in enumerate(document["predictions"]):
        assert entry["image"] == str(paths[i])
        got = {t["class_name"]: t["probability"] for t in entry["top"]}
        assert got == pytest.approx({n: expected[i, k] for k, n in enumerate(CLASS_NAMES)}, abs=TOLERANCE)
        assert [e["class_name"] for e in entry["experts"]] == CLASS_NAMES
    assert "note: " + str(paths[0]) + ": resized from 80x48 to 32x32 (aspect ratio not kept)" in result.stderr
    assert "converted L to RGB" in result.stderr


def test_bin_predict_text_output_and_error_exit(models, images):
    result = run_tool("predict", "--model", models["keras"], "--top_k=1", "--class_names=x,y,z", images / "exact.png")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == str(images / "exact.png")
    assert lines[1].split()[0] == "1." and lines[1].split()[1] in ("x", "y", "z")
    assert lines[2].strip() == "experts, p(my class):"
    assert [line.split()[0] for line in lines[3:6]] == ["x", "y", "z"]

    failed = run_tool("predict", "--model", models["keras"], images / "missing.png")
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines()[-1] == f"error: image {str(images / 'missing.png')!r} does not exist; " \
                                                     f"check the path"
    assert "Traceback" not in failed.stderr
