"""The one loader refuses what it cannot serve with one line saying what it found and what it expects: a foreign
.keras network, a network without a 'logits' output, a SavedModel with another signature, a file that is not a
.keras archive. Before, these gave 30- to 182-line tracebacks (one printed a whole image tensor) or "File not
found" for a file that exists."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from mocse_tf import loading
from mocse_tf.errors import UsageError
from tests.cli_helpers import assert_clean_error, run_all, tool_command


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    base = tmp_path_factory.mktemp("foreign")
    paths = {}
    sequential = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    sequential.save(paths.setdefault("sequential", str(base / "sequential.keras")))
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Dense(10)(features)).save(paths.setdefault("tensor", str(base / "tensor.keras")))
    keras.Model(inputs, {"probs": keras.layers.Dense(10, activation="softmax")(features)}).save(
        paths.setdefault("no_logits", str(base / "no_logits.keras")))
    (base / "notes.keras").write_text("this is not a model\n")
    paths["text"] = str(base / "notes.keras")

    def saved_model(name, spec):
        module = tf.Module()
        module.f = tf.function(lambda **kw: {"logits": tf.zeros([tf.shape(next(iter(kw.values())))[0], 10])},
                               input_signature=None)
        function = tf.function(lambda x: {"logits": tf.reduce_mean(tf.cast(x, tf.float32), [1, 2]) @ tf.ones([3, 10])},
                               input_signature=[spec])
        module.serve = function
        tf.saved_model.save(module, str(base / name), signatures={"serving_default": function})
        return str(base / name)

    paths["float32_input"] = saved_model("float32_input", tf.TensorSpec([None, 32, 32, 3], tf.float32, name="images"))
    paths["other_name"] = saved_model("other_name", tf.TensorSpec([None, 32, 32, 3], tf.uint8, name="pixels"))
    return paths


@pytest.mark.parametrize("case, fragments", [
    ("sequential", ["is not a mocse_tf network", "a single tensor [batch, 10]", "'logits'"]),
    ("tensor", ["a single tensor [batch, 10]", "expected a mocse_tf network"]),
    ("no_logits", ["a dict with 'probs'", "'logits'"]),
    ("text", ["is not a .keras archive: it is a text file", "zip"]),
    ("float32_input", ["serving_default takes 'images' float32 [None, 32, 32, 3]", "one uint8 input named 'images'"]),
    ("other_name", ["serving_default takes 'pixels' uint8", "named 'images'"]),
])
def test_foreign_models_get_one_line_naming_what_was_found_and_expected(foreign, case, fragments):
    with pytest.raises(UsageError) as caught:
        loading.load_model(foreign[case])
    message = str(caught.value)
    assert "\n" not in message and "File not found" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_tools_refuse_foreign_models_with_one_line(foreign, tmp_path):
    image = tmp_path / "x.png"
    keras.utils.save_img(str(image), np.zeros((32, 32, 3), np.uint8))
    commands = [tool_command("predict", "--model", foreign["float32_input"], image),
                tool_command("eval_c", "--model", foreign["sequential"], "--source=generate", "--dataset=synthetic",
                             "--num_examples=10", f"--output_dir={tmp_path / 'c'}")]
    for result, fragment in zip(run_all(commands), ["float32", "a single tensor"]):
        assert_clean_error(result, fragment)
        assert len(result.stderr.splitlines()) <= 2, result.stderr  # no tensor dump, no traceback


def test_a_base_folder_resolves_to_its_highest_numeric_savedmodel_version(tmp_path):
    for name in ("2", "9", "10", "11", "notes"):  # 11 holds no SavedModel; 10 > 9 as numbers, not as strings
        (tmp_path / name).mkdir()
        if name in ("2", "9", "10"):
            (tmp_path / name / "saved_model.pb").write_bytes(b"")
    assert loading.resolve_model_path(tmp_path) == str(tmp_path / "10")
