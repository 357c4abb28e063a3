"""The export layout and its writers: SavedModels in the TF Serving layout, `.keras` files, and the names of the
files bin/train writes beside them (mocse_tf.loading reads them back).

`export_saved_model` writes `<base>/<version>/` with a `serving_default` signature:
  input  images: uint8 [batch, 32, 32, 3] (raw RGB pixels)
  outputs probabilities float32 [batch, N], logits float32 [batch, N], class_ids int64 [batch],
          and for MoCSE expert_probabilities float32 [batch, N] (each expert's p("my class")).
Folders are written atomically (mocse_tf.files), so a crash never leaves a half-written version; `.keras` files
are written with mocse_tf.files.save_keras.
"""

import os

import keras
import tensorflow as tf

from mocse_tf import files
from mocse_tf.errors import UsageError

SIGNATURE_INPUT = "images"
# bin/train's export base folder <export_dir>/<run>/ holds <version>/ SavedModels and these two files.
KERAS_FILE = "model.keras"
CLASS_NAMES_FILE = "class_names.json"


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


def serving_function(network):
    """uint8 images [B, H, W, 3] -> the signature's named outputs of `network` in inference mode."""

    def serve(images):
        return serving_outputs(network(tf.cast(images, tf.float32), training=False))

    return serve


def versions(base_dir):
    """The numeric version folder names in base_dir, as sorted integers (none when it is not a folder)."""
    return sorted(int(n) for n in os.listdir(base_dir) if n.isdigit()) if os.path.isdir(base_dir) else []


def next_version(base_dir):
    """1 + the highest numeric version folder in base_dir (1 when there is none)."""
    return max(versions(base_dir), default=0) + 1


def export_saved_model(network, base_dir, version=None):
    """Exports `network` to base_dir/<version>/ (next free version by default); returns that path."""
    version = next_version(base_dir) if version is None else int(version)
    final_path = os.path.join(base_dir, str(version))
    if os.path.exists(final_path):
        raise UsageError(f"export folder {final_path} already exists; pick another version or remove it")
    height, width, channels = network.input_shape[1:]

    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint(
        "serving_default", serving_function(network),
        input_signature=[tf.TensorSpec([None, height, width, channels], tf.uint8, name=SIGNATURE_INPUT)],
    )
    with files.replacing(final_path) as tmp_path:
        archive.write_out(tmp_path, verbose=False)
    return final_path
