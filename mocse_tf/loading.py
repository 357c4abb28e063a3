"""The one model loader: a `.keras` file, a SavedModel folder or a TF Serving base folder of numeric versions
becomes a `Classifier` for batched inference; where a `.keras` file is available the Classifier also holds the
Keras network, which gives the input gradients attacks need. Everything that reads a model (bin/eval_c,
bin/eval_adv, bin/predict, bin/tune's trial scores) goes through here, so every tool accepts and refuses the same
models with the same one-line messages.
"""

import os
import zipfile

import keras
import numpy as np
import tensorflow as tf

from mocse_tf.errors import UsageError, describe_error
from mocse_tf.export import KERAS_FILE, SIGNATURE_INPUT, serving_function, versions


class Classifier:
    """A model ready for inference: `predict` on uint8 images [B, 32, 32, 3]; `network` is its Keras network
    (None for a SavedModel loaded without one)."""

    def __init__(self, path, predict_fn, num_classes, has_experts, network=None):
        self.path = path
        self._predict_fn = predict_fn
        self.num_classes = num_classes
        self.has_experts = has_experts
        self.network = network

    @classmethod
    def from_network(cls, network, path=None):
        """A Classifier running a Keras network in memory (e.g. the one being trained)."""
        predict_fn = tf.function(serving_function(network), reduce_retracing=True)
        return cls(path, predict_fn, int(network.output["logits"].shape[-1]), "expert_logits" in network.output,
                   network)

    def predict(self, images):
        """uint8 [B, 32, 32, 3] -> dict of numpy arrays with the serving signature's output names."""
        return {k: v.numpy() for k, v in self._predict_fn(tf.convert_to_tensor(images, tf.uint8)).items()}

    def logits_fn(self):
        """The underlying batched function uint8 images -> output dict of tensors (for tf.data / tf.function)."""
        return self._predict_fn


def _is_saved_model(path):
    return os.path.isdir(path) and (os.path.exists(os.path.join(path, "saved_model.pb"))
                                    or os.path.exists(os.path.join(path, "saved_model.pbtxt")))


def _sibling_keras_file(saved_model_path):
    return os.path.join(os.path.dirname(os.path.normpath(saved_model_path)), KERAS_FILE)


def resolve_model_path(path, *, need_network=False):
    """The file or folder to load for `path`: a SavedModel folder, a TF Serving base folder (its highest version)
    or a `.keras` file. need_network: a SavedModel must have bin/train's model.keras beside it (checked here, so
    every path can be checked before anything is loaded)."""
    path = os.fspath(path)  # str or pathlib.Path
    resolved = None
    if (path.endswith(".keras") and os.path.isfile(path)) or _is_saved_model(path):
        resolved = path
    elif os.path.isdir(path):
        resolved = next((os.path.join(path, str(v)) for v in reversed(versions(path))
                         if _is_saved_model(os.path.join(path, str(v)))), None)
    if resolved is None:
        raise UsageError(
            f"`model` {path!r} is neither a SavedModel folder (with saved_model.pb), a folder of numeric SavedModel "
            f"versions, nor a .keras file; point it at e.g. saved_models/<run>/<version> or "
            f"saved_models/<run>/{KERAS_FILE}")
    if need_network and not resolved.endswith(".keras") and not os.path.isfile(_sibling_keras_file(resolved)):
        raise UsageError(
            f"`model` {path!r} is a SavedModel, whose serving signature takes uint8 images and so gives no input "
            f"gradients to attack, and no {KERAS_FILE} lies beside it ({_sibling_keras_file(resolved)} is absent); "
            f"pass the .keras file that bin/train writes into saved_models/<run>/{KERAS_FILE} (or save the network "
            f"with network.save)")
    return resolved


EXPECTED_NETWORK = "a mocse_tf network: input [batch, 32, 32, 3], output a dict with 'logits' [batch, classes]"
EXPECTED_SIGNATURE = (f"a serving_default signature taking one uint8 input named {SIGNATURE_INPUT!r} "
                      f"[batch, 32, 32, 3] and giving 'logits', as bin/train exports")


def _describe_file(path):
    """What a file that should be a .keras archive is instead, in a few words."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        return "an empty file"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return f"a {os.path.getsize(path)}-byte binary file that is not a zip archive"


def _check_keras_archive(path):
    """A .keras file is a zip archive holding config.json; anything else gets a line saying what it is."""
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path} is not a .keras archive: it is {_describe_file(path)}; expected the zip file "
                         f"that model.save writes (e.g. saved_models/<run>/{KERAS_FILE})")
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise UsageError(f"{path} is not a .keras archive: a zip file without config.json (found "
                             f"{', '.join(archive.namelist()[:3]) or 'nothing'}); expected the file model.save writes")


def _network_outputs(network):
    """The network's (symbolic) outputs; a Sequential model that was never called is asked with one blank image."""
    try:
        return network.output
    except AttributeError:
        try:
            return network(tf.zeros([1, 32, 32, 3]), training=False)
        except Exception as err:
            return err


def _describe_outputs(outputs):
    if isinstance(outputs, Exception):
        return f"not computable on [1, 32, 32, 3] images ({type(outputs).__name__})"
    if isinstance(outputs, dict):
        return f"a dict with {', '.join(repr(k) for k in outputs)}"
    if isinstance(outputs, (list, tuple)):
        return f"{len(outputs)} tensors"
    return f"a single tensor [batch, {', '.join(str(d) for d in tuple(outputs.shape)[1:])}]"


def load_network(keras_path):
    """A mocse_tf Keras network from a `.keras` file (safe mode, mocse_tf's aggregators registered); a file that is
    not a .keras archive or holds another kind of network is refused with one line saying what was found."""
    import mocse_tf.models  # noqa: F401  (registers the aggregators for safe_mode loading)

    _check_keras_archive(keras_path)
    try:
        network = keras.models.load_model(keras_path, compile=False, safe_mode=True)
    except Exception as err:  # a damaged or foreign file: one line, not a traceback
        raise UsageError(f"cannot load {keras_path}: {describe_error(err)}; expected {EXPECTED_NETWORK}") from None
    outputs = _network_outputs(network)
    if not isinstance(outputs, dict) or "logits" not in outputs:
        raise UsageError(f"{keras_path} is not a mocse_tf network: its output is {_describe_outputs(outputs)}; "
                         f"expected {EXPECTED_NETWORK} (bin/train writes such files)")
    input_shape = tuple(network.input_shape)
    if len(input_shape) != 4 or input_shape[1:] != (32, 32, 3):
        raise UsageError(f"{keras_path} takes inputs of shape {input_shape}; expected {EXPECTED_NETWORK}")
    return network


def _load_saved_model(path):
    try:
        loaded = tf.saved_model.load(path)
    except Exception as err:
        raise UsageError(f"cannot load SavedModel {path}: {describe_error(err)}") from None
    if "serving_default" not in loaded.signatures:
        raise UsageError(f"SavedModel {path} has no serving_default signature (found: "
                         f"{', '.join(loaded.signatures) or 'none'}); expected {EXPECTED_SIGNATURE}")
    signature = loaded.signatures["serving_default"]
    _check_signature(path, signature)
    outputs = signature.structured_outputs

    def predict_fn(images):
        return signature(**{SIGNATURE_INPUT: images})

    predict_fn.keepalive = loaded  # the signature needs the loaded object alive
    return Classifier(path, predict_fn, int(outputs["logits"].shape[-1]), "expert_probabilities" in outputs)


def _check_signature(path, signature):
    """One uint8 [batch, 32, 32, 3] input named `images` and a 'logits' output, or one line naming what was found
    (names, dtypes and shapes only: never a tensor's values)."""
    args, kwargs = signature.structured_input_signature
    specs = dict(kwargs)
    specs.update({f"<positional {i}>": spec for i, spec in enumerate(args)})
    spec = specs.get(SIGNATURE_INPUT)
    if len(specs) != 1 or spec is None or spec.dtype != tf.uint8 or spec.shape.rank != 4 \
            or tuple(spec.shape[1:]) != (32, 32, 3):
        found = ", ".join(f"{name!r} {getattr(s, 'dtype', tf.float32).name} {list(getattr(s, 'shape', []))}"
                          for name, s in specs.items()) or "no input"
        raise UsageError(f"SavedModel {path}: serving_default takes {found}; expected {EXPECTED_SIGNATURE}")
    outputs = signature.structured_outputs
    if not isinstance(outputs, dict) or "logits" not in outputs:
        found = ", ".join(repr(k) for k in outputs) if isinstance(outputs, dict) else "an unnamed output"
        raise UsageError(f"SavedModel {path}: serving_default gives {found} and no 'logits'; expected "
                         f"{EXPECTED_SIGNATURE}")


def check_same_model(network, saved_model):
    """Raises UsageError unless a SavedModel Classifier's logits match the network's on fixed probe images."""
    probe = np.random.default_rng(0).integers(0, 256, (8, *network.input_shape[1:]), dtype=np.uint8)
    served = saved_model.predict(probe)["logits"]
    ours = np.asarray(network(probe.astype("float32"), training=False)["logits"])
    tolerance = 1e-3 * (1.0 + float(np.max(np.abs(served))))
    if served.shape != ours.shape or float(np.max(np.abs(served - ours))) > tolerance:
        raise UsageError(f"the {KERAS_FILE} beside SavedModel {saved_model.path} gives different logits than the "
                         f"SavedModel (another training run or version?); pass the .keras file of the model you "
                         f"mean to evaluate with `model`")


def check_class_counts(classifiers, num_classes, data_name):
    """Every model of {name: Classifier} must predict exactly the data set's classes."""
    for model_name, classifier in classifiers.items():
        if classifier.num_classes != num_classes:
            raise UsageError(f"model {model_name} ({classifier.path}) predicts {classifier.num_classes} classes but "
                             f"{data_name} has {num_classes}; evaluate it on the data set it was trained on "
                             f"(`dataset`)")


def load_model(path, *, need_network=False):
    """Loads any path `resolve_model_path` accepts as a Classifier. need_network: the Classifier must hold a Keras
    network (input gradients); for a SavedModel that is bin/train's model.keras beside it, checked to give the
    SavedModel's logits, and the Classifier's path is that file."""
    resolved = resolve_model_path(path, need_network=need_network)
    if resolved.endswith(".keras"):
        return Classifier.from_network(load_network(resolved), resolved)
    saved_model = _load_saved_model(resolved)
    if not need_network:
        return saved_model
    keras_path = _sibling_keras_file(resolved)
    network = load_network(keras_path)
    check_same_model(network, saved_model)
    return Classifier.from_network(network, keras_path)
