"""The TF Serving contract of exported models, checked from a fresh process that never imports mocse_tf.

Exports a tiny MoCSE and a tiny PreAct-ResNet-18, then (1) `saved_model_cli show --all` lists serving_default
with the documented names, dtypes and shapes, and (2) a gRPC PredictRequest and REST JSON bodies (row
`instances` and columnar `inputs`) fed to the loaded signature give the Keras model's outputs within 1e-5.
This is also the SavedModel round trip in a fresh process.
"""

import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from mocse_tf import export
from mocse_tf.models import mocse, preact_resnet18

# The request protos come from tensorflow-serving-api, installed with --no-deps next to tensorflow-cpu (BUILD.md).
HAVE_SERVING_API = importlib.util.find_spec("tensorflow_serving") is not None

CLIENT = pathlib.Path(__file__).with_name("serving_client.py")
TOLERANCE = 1e-5
NUM_IMAGES = 3
# 4 classes keep the tiny MoCSE (one expert per class) quick to trace; the contract does not depend on N.
NUM_CLASSES = 4

# What BUILD.md documents: output name -> (dtype, shape) with -1 the batch dimension.
DOCUMENTED_OUTPUTS = {
    "probabilities": ("DT_FLOAT", (-1, NUM_CLASSES)),
    "logits": ("DT_FLOAT", (-1, NUM_CLASSES)),
    "class_ids": ("DT_INT64", (-1,)),
}  # N = NUM_CLASSES here; 10 for CIFAR-10 exports
MOCSE_ONLY_OUTPUTS = {"expert_probabilities": ("DT_FLOAT", (-1, NUM_CLASSES))}


def _sample_images():
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (NUM_IMAGES, 32, 32, 3), dtype=np.uint8)
    images[0] = 0  # the extremes of the pixel range travel through JSON and protos too
    images[1, :16] = 255
    return images


def _keras_reference(network, images):
    """What the Keras model says, computed independently of the exported signature."""
    outputs = network(images.astype(np.float32), training=False)
    logits = keras.ops.convert_to_numpy(outputs["logits"]).astype(np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    reference = {"logits": logits, "probabilities": shifted / shifted.sum(axis=-1, keepdims=True),
                 "class_ids": logits.argmax(axis=-1)}
    if "expert_logits" in outputs:
        expert_logits = keras.ops.convert_to_numpy(outputs["expert_logits"]).astype(np.float64)
        # p(true) of a 2-way softmax is the sigmoid of the margin z_true - z_false.
        reference["expert_probabilities"] = 1.0 / (1.0 + np.exp(expert_logits[..., 0] - expert_logits[..., 1]))
    return reference


def _expected_outputs(arch):
    return {**DOCUMENTED_OUTPUTS, **(MOCSE_ONLY_OUTPUTS if arch == "mocse" else {})}


def test_export_uses_tf_serving_version_layout(exported):
    assert exported["path"] == exported["base"] / "1"
    assert sorted(os.listdir(exported["base"])) == ["1"]  # no temporary folder left behind
    assert (exported["path"] / "saved_model.pb").is_file()
    assert (exported["path"] / "variables").is_dir()


def _saved_model_cli():
    beside_python = pathlib.Path(sys.executable).with_name("saved_model_cli")
    found = str(beside_python) if beside_python.exists() else shutil.which("saved_model_cli")
    if found is None:
        pytest.fail("saved_model_cli is missing: it ships with the tensorflow package")
    return found


class Finished:
    """A started subprocess; `.result()` waits for it (both processes of an export run side by side)."""

    def __init__(self, args, **kwargs):
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)

    def result(self, timeout=180):
        stdout, stderr = self._process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(self._process.args, self._process.returncode, stdout, stderr)


@pytest.fixture(scope="module", params=["mocse", "preact_resnet18"])
def exported(request, tmp_path_factory):
    keras.utils.set_random_seed(3)
    if request.param == "mocse":
        network = mocse(num_classes=NUM_CLASSES, expert_width=2)
    else:
        network = preact_resnet18(num_classes=NUM_CLASSES, width=4)
    work = tmp_path_factory.mktemp(request.param)
    base = work / "saved_models" / request.param
    path = pathlib.Path(export.export_saved_model(network, str(base)))
    images = _sample_images()
    np.save(work / "images.npy", images)
    client_dir = work / "client"
    client_dir.mkdir()
    # Both fresh processes start now and overlap (each spends seconds importing TensorFlow).
    # The client runs outside the repository without PYTHONPATH: it sees TensorFlow, not this project's sources.
    client = None
    if HAVE_SERVING_API:
        client = Finished([sys.executable, str(CLIENT), str(path), str(work / "images.npy"), str(client_dir)],
                          cwd=work, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    cli_show = Finished([_saved_model_cli(), "show", "--all", "--dir", str(path)],
                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    yield {"arch": request.param, "base": base, "path": path, "images": images,
           "reference": _keras_reference(network, images), "client": client, "client_dir": client_dir,
           "cli_show": cli_show}
    for process in (client, cli_show):
        if process is not None and process._process.poll() is None:
            process._process.kill()
            process._process.wait()


def _parse_signature(text, signature_name):
    """{"inputs"|"outputs": {name: (dtype, shape)}} for one signature of `saved_model_cli show --all`."""
    block = text.split(f"signature_def['{signature_name}']:", 1)[1].split("signature_def[", 1)[0]
    block = block.split("Concrete Functions", 1)[0]
    parsed = {}
    for section in ("inputs", "outputs"):
        body = block.split(f"The given SavedModel SignatureDef contains the following {section[:-1]}(s):", 1)[1]
        body = body.split("The given SavedModel SignatureDef contains", 1)[0].split("Method name is", 1)[0]
        entries = re.findall(r"\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: \(([^)]*)\)", body)
        parsed[section] = {name: (dtype, tuple(int(d) for d in shape.replace(" ", "").split(",") if d))
                           for name, dtype, shape in entries}
    return parsed


def test_saved_model_cli_lists_the_documented_signature(exported):
    result = exported["cli_show"].result()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "signature_def['serving_default']:" in result.stdout
    signature = _parse_signature(result.stdout, "serving_default")
    assert signature["inputs"] == {"images": ("DT_UINT8", (-1, 32, 32, 3))}
    assert signature["outputs"] == _expected_outputs(exported["arch"])
    assert "Method name is: tensorflow/serving/predict" in result.stdout


@pytest.mark.skipif(not HAVE_SERVING_API, reason="tensorflow-serving-api is not installed (see BUILD.md)")
def test_requests_in_a_fresh_process_match_keras(exported):
    result = exported["client"].result()
    assert result.returncode == 0, result.stderr[-3000:]
    out_dir = exported["client_dir"]

    summary = json.loads((out_dir / "client.json").read_text())
    assert summary["mocse_tf_modules"] == []
    assert summary["input_name"] == "images"
    forms = ["grpc", "rest_inputs", "rest_instances", "rest_instances_named"]
    assert summary["forms"] == forms
    reference = exported["reference"]
    for form in forms:
        with np.load(out_dir / f"{form}.npz") as answer:
            assert sorted(answer.files) == sorted(_expected_outputs(exported["arch"])), form
            for name, expected in reference.items():
                got = answer[name]
                assert got.shape == expected.shape, (form, name)
                if name == "class_ids":
                    np.testing.assert_array_equal(got, expected, err_msg=form)
                else:
                    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, err_msg=f"{form} {name}")
    # The probabilities are a distribution over classes, whichever way they travelled.
    with np.load(out_dir / "rest_inputs.npz") as answer:
        np.testing.assert_allclose(answer["probabilities"].sum(axis=-1), 1.0, atol=1e-5)
