"""SavedModel export in the TF Serving layout, and loading any exported model back for inference.

`export_saved_model` writes `<base>/<version>/` with a `serving_default` signature:
  input  images: uint8 [batch, 32, 32, 3] (raw RGB pixels)
  outputs probabilities float32 [batch, N], logits float32 [batch, N], class_ids int64 [batch],
          and for MoCSE expert_probabilities float32 [batch, N] (each expert's p("my class")).
Folders are written under a temporary name and renamed, so a crash never leaves a half-written version.
"""

import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from mocse_tf.errors import UsageError

SIGNATURE_INPUT = "images"


def serving_outputs(outputs):
    """The signature's named outputs from a network's output dict."""
    logits = tf.cast(outputs["logits"], tf.float32)
    result = {
        "probabilities": tf.nn.softmax(logits, axis=-1),
        "logits": logits,
        "class_ids": tf.argmax(logits, axis=-1),
    }
    if "expert_logits" in outputs:
        expert_logits = tf.cast(outputs["expert_logits"], tf.float32)
        result["expert_probabilities"] = tf.nn.softmax(expert_logits, axis=-1)[..., 1]
    return result


def next_version(base_dir):
    """1 + the highest numeric version folder in base_dir (1 when there is none)."""
    if not os.path.isdir(base_dir):
        return 1
    versions = [int(n) for n in os.listdir(base_dir) if n.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(network, base_dir, version=None):
    """Exports `network` to base_dir/<version>/ (next free version by default); returns that path."""
    version = next_version(base_dir) if version is None else int(version)
    final_path = os.path.join(base_dir, str(version))
    if os.path.exists(final_path):
        raise UsageError(f"export folder {final_path} already exists; pick another version or remove it")
    tmp_path = os.path.join(base_dir, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp_path, ignore_errors=True)
    height, width, channels = network.input_shape[1:]

    archive = keras.export.ExportArchive()
    archive.track(network)

    def serve(images):
        return serving_outputs(network(tf.cast(images, tf.float32), training=False))

    archive.add_endpoint(
        "serving_default", serve,
        input_signature=[tf.TensorSpec([None, height, width, channels], tf.uint8, name=SIGNATURE_INPUT)],
    )
    try:
        os.makedirs(base_dir, exist_ok=True)
        archive.write_out(tmp_path, verbose=False)
        os.rename(tmp_path, final_path)
    except OSError as err:
        shutil.rmtree(tmp_path, ignore_errors=True)
        raise UsageError(f"cannot write the export to {base_dir}: {err.strerror or err}; "
                         f"choose a writable --export_dir with free space") from None
    return final_path


def save_keras_atomic(network, path):
    """Saves a `.keras` file through a temporary name, so an existing file is replaced only when complete."""
    tmp_path = f"{path}.tmp-{os.getpid()}.keras"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        network.save(tmp_path)
        os.replace(tmp_path, path)
    except OSError as err:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise UsageError(f"cannot write {path}: {err.strerror or err}; choose a writable folder with free space") \
            from None
    return path


class LoadedClassifier:
    """A model loaded from a SavedModel folder or a `.keras` file, with one batched prediction call."""

    def __init__(self, path, predict_fn, num_classes, has_experts):
        self.path = path
        self._predict_fn = predict_fn
        self.num_classes = num_classes
        self.has_experts = has_experts

    def predict(self, images):
        """uint8 [B, 32, 32, 3] -> dict of numpy arrays with the signature's output names."""
        return {k: v.numpy() for k, v in self._predict_fn(tf.convert_to_tensor(images, tf.uint8)).items()}

    def logits_fn(self):
        """The underlying batched function uint8 images -> output dict of tensors (for tf.data / tf.function)."""
        return self._predict_fn


def _is_saved_model(path):
    return os.path.isdir(path) and (os.path.exists(os.path.join(path, "saved_model.pb"))
                                    or os.path.exists(os.path.join(path, "saved_model.pbtxt")))


def resolve_model_path(path):
    """Accepts a SavedModel folder, a TF Serving base folder (takes its highest version) or a `.keras` file."""
    path = os.fspath(path)  # str or pathlib.Path
    if path.endswith(".keras") and os.path.isfile(path):
        return path
    if _is_saved_model(path):
        return path
    if os.path.isdir(path):
        versions = sorted((int(n) for n in os.listdir(path) if n.isdigit()), reverse=True)
        for version in versions:
            candidate = os.path.join(path, str(version))
            if _is_saved_model(candidate):
                return candidate
    raise UsageError(
        f"--model {path!r} is neither a SavedModel folder (with saved_model.pb), a folder of numeric SavedModel "
        f"versions, nor a .keras file; point it at e.g. saved_models/<run>/<version> or saved_models/<run>/model.keras")


def load_classifier(path):
    """Loads a model for inference from any path `resolve_model_path` accepts."""
    resolved = resolve_model_path(path)
    if resolved.endswith(".keras"):
        import mocse_tf.models  # noqa: F401  (registers the aggregators for safe_mode loading)

        try:
            network = keras.models.load_model(resolved, compile=False, safe_mode=True)
        except Exception as err:  # a damaged or foreign file: one line, not a traceback
            raise UsageError(f"cannot load {resolved}: {type(err).__name__}: {str(err).splitlines()[0]}") from None
        has_experts = isinstance(network.output, dict) and "expert_logits" in network.output

        @tf.function(reduce_retracing=True)
        def predict_fn(images):
            return serving_outputs(network(tf.cast(images, tf.float32), training=False))

        num_classes = int(network.output["logits"].shape[-1])
        return LoadedClassifier(resolved, predict_fn, num_classes, has_experts)
    try:
        loaded = tf.saved_model.load(resolved)
        signature = loaded.signatures["serving_default"]
    except Exception as err:
        raise UsageError(f"cannot load SavedModel {resolved}: {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}") from None
    outputs = signature.structured_outputs
    if "logits" not in outputs:
        raise UsageError(f"SavedModel {resolved} has no 'logits' output in serving_default; export it with mocse_tf")

    def predict_fn(images):
        return signature(**{SIGNATURE_INPUT: images})

    predict_fn.keepalive = loaded  # the signature needs the loaded object alive
    return LoadedClassifier(resolved, predict_fn, int(outputs["logits"].shape[-1]),
                            "expert_probabilities" in outputs)


def check_images(images):
    """Raises UsageError unless images is a uint8 array of shape [B, 32, 32, 3]."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise UsageError(f"expected uint8 images of shape [B, 32, 32, 3], got {images.dtype} {images.shape}")
    return images
