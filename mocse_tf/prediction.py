"""Classifying image files with an exported model: the logic behind `bin/predict`.

Images of any size and colour mode are turned into the model's uint8 [32, 32, 3] input (with a note saying
what was changed); class names come from a list given by the user or a `class_names.json` beside the export.
"""

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mocse_tf import loading
from mocse_tf.errors import UsageError
from mocse_tf.export import CLASS_NAMES_FILE
from mocse_tf.files import read_json

IMAGE_SIZE = (32, 32)  # width, height of the models' input


def read_image(path, size=IMAGE_SIZE):
    """uint8 [H, W, 3] RGB pixels of an image file, resized to `size`, and notes on every change made."""
    if not os.path.exists(path):
        raise UsageError(f"image {path!r} does not exist; check the path")
    if os.path.isdir(path):
        raise UsageError(f"image {path!r} is a folder; pass image files (PNG or JPEG)")
    try:
        with Image.open(path) as opened:
            opened.load()  # decode now, so a truncated file fails here with its name
            image = ImageOps.exif_transpose(opened)  # phone photos store their rotation in EXIF
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UsageError(f"cannot read image {path!r}: {err}; pass a PNG or JPEG file") from None
    notes = []
    image = _to_rgb(image, notes)
    if image.size != tuple(size):
        notes.append(f"resized from {image.size[0]}x{image.size[1]} to {size[0]}x{size[1]}"
                     + (" (aspect ratio not kept)" if image.size[0] * size[1] != image.size[1] * size[0] else ""))
        # Pillow's bicubic resize widens its kernel when shrinking, so large photos are antialiased.
        image = image.resize(tuple(size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8), notes


def _to_rgb(image, notes):
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        # High bit-depth grayscale: scale the full range to 8 bits instead of clipping at 255.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode != "F" else max(1.0, float(values.max()))
        gray = np.clip(np.round(values / peak * 255.0), 0, 255).astype(np.uint8)
        notes.append(f"converted {mode} (high bit depth grayscale) to RGB")
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Transparent pixels have no colour of their own: show them on white, as an image viewer would.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append(f"converted {mode} to RGB (transparency composited on white)")
        return Image.alpha_composite(background, rgba).convert("RGB")
    notes.append(f"converted {mode} to RGB" + (" (grayscale copied to 3 channels)" if mode in ("L", "1") else ""))
    return image.convert("RGB")


def parse_class_names(value):
    """`class_names`: a comma-separated list, or the path of a JSON file holding a list of names."""
    if os.path.isfile(value):
        return _read_class_names_file(value)
    names = [name.strip() for name in value.split(",")]
    if value.endswith(".json") or len(names) < 2 or not all(names):
        raise UsageError(f"`class_names`={value!r} is neither an existing JSON file nor a comma-separated list "
                         f"of names; pass e.g. `class_names`=cat,dog or `class_names`=path/to/{CLASS_NAMES_FILE}")
    return names


def _read_class_names_file(path):
    try:
        names = read_json(path)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read class names from {path}: {err}") from None
    if isinstance(names, dict):  # also accept {"class_names": [...]}
        names = names.get("class_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError(f"{path} must hold a JSON list of class-name strings, e.g. [\"airplane\", \"automobile\"]")
    return names


def find_class_names_file(model_path):
    """The `class_names.json` in a model's folder or the export base folder above it, or None."""
    folder = model_path if os.path.isdir(model_path) else os.path.dirname(os.path.abspath(model_path))
    for candidate in (os.path.join(folder, CLASS_NAMES_FILE), os.path.join(os.path.dirname(folder),
                                                                           CLASS_NAMES_FILE)):
        if os.path.isfile(candidate):
            return candidate
    return None


def resolve_class_names(classifier, class_names=None):
    """Names for the classifier's classes: `class_names` (see parse_class_names), else class_names.json beside the
    export, else class_<i>."""
    if class_names:
        names, source = parse_class_names(class_names), "`class_names`"
    else:
        source = find_class_names_file(classifier.path)
        if source is None:
            return [f"class_{i}" for i in range(classifier.num_classes)]
        names = _read_class_names_file(source)
    if len(names) != classifier.num_classes:
        raise UsageError(f"{source} gives {len(names)} class names but the model has {classifier.num_classes} "
                         f"classes; pass exactly {classifier.num_classes} names")
    return names


def predict_files(model_path, image_paths, top_k=3, class_names=None):
    """Classifies image files; returns a JSON-ready dict with the top classes (and experts) per image."""
    if not image_paths:
        raise UsageError("no images given; pass one or more image paths")
    if top_k <= 0:
        raise UsageError(f"`top_k` must be a positive integer, got {top_k}")
    # Read every image before loading the model, so a bad image fails at once.
    pixels, notes = zip(*(read_image(path) for path in image_paths))
    classifier = loading.load_model(model_path)
    names = resolve_class_names(classifier, class_names)
    outputs = classifier.predict(np.stack(pixels))
    top_k = min(top_k, classifier.num_classes)

    predictions = []
    for i, path in enumerate(image_paths):
        probabilities = outputs["probabilities"][i]
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        entry = {
            "image": path,
            "notes": list(notes[i]),
            "top": [{"class_id": int(k), "class_name": names[k], "probability": float(probabilities[k])}
                    for k in order],
        }
        if classifier.has_experts:
            entry["experts"] = [{"class_id": k, "class_name": names[k], "confidence": float(confidence)}
                                for k, confidence in enumerate(outputs["expert_probabilities"][i])]
        predictions.append(entry)
    return {"model": classifier.path, "num_classes": classifier.num_classes, "class_names": names,
            "predictions": predictions}


def format_text(result):
    """Human-readable lines: each image, its top classes, and for MoCSE each expert's confidence."""
    width = max(len(name) for name in result["class_names"])
    lines = []
    for entry in result["predictions"]:
        lines.append(entry["image"])
        for rank, top in enumerate(entry["top"], start=1):
            lines.append(f"  {rank}. {top['class_name']:<{width}}  {top['probability']:.4f}")
        if "experts" in entry:
            lines.append("  experts, p(my class):")
            for expert in entry["experts"]:
                lines.append(f"     {expert['class_name']:<{width}}  {expert['confidence']:.4f}")
    return "\n".join(lines)
