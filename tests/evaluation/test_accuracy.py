"""Accuracy through the evaluation pipeline equals a direct NumPy computation on a real exported model, and
corruption evaluation fills every model x corruption x severity with the right number."""

import numpy as np
import pytest

from mocse_tf.data import make_pipeline
from mocse_tf.errors import UsageError
from mocse_tf.evaluation import accuracy, config as eval_config, corruption_eval, sources
from mocse_tf.loading import load_model


def numpy_accuracy(classifier, images, labels):
    predicted = np.argmax(classifier.predict(images)["logits"], axis=-1)
    return float(np.mean(predicted == labels))


def labels_half_right(classifier, images, seed=0):
    """Labels equal to the model's prediction for about half the images, so accuracy is far from 0 and 1."""
    predicted = np.argmax(classifier.predict(images)["logits"], axis=-1)
    rng = np.random.default_rng(seed)
    wrong = (predicted + rng.integers(1, 10, len(images))) % 10
    return np.where(rng.random(len(images)) < 0.5, predicted, wrong).astype(np.int64)


@pytest.mark.parametrize("kind", ["saved_model", "keras"])
def test_accuracy_equals_numpy_on_a_real_exported_model(tiny_models, kind):
    classifier = load_model(tiny_models[kind])
    images = np.random.default_rng(1).integers(0, 256, (37, 32, 32, 3), dtype=np.uint8)
    labels = labels_half_right(classifier, images)
    expected = numpy_accuracy(classifier, images, labels)
    assert 0.2 < expected < 0.8
    batches = make_pipeline(images, labels, 10, training=False)  # 4 batches, the last short
    assert accuracy.accuracy(accuracy.correct_counter(classifier), batches) == expected


def test_evaluate_matches_numpy_for_every_model_and_cell(tiny_models, released_folder, synthetic_test):
    classifiers = {"sm": load_model(tiny_models["saved_model"]), "k": load_model(tiny_models["keras"])}
    source = sources.FolderSource(str(released_folder), ["gaussian_noise", "frosted_glass_blur"], num_examples=20)
    clean_images = synthetic_test.images[:25]
    clean_labels = labels_half_right(classifiers["sm"], clean_images)
    results, samples = corruption_eval.evaluate(
        classifiers, source, ["gaussian_noise", "frosted_glass_blur"], [2, 5], clean=(clean_images, clean_labels),
        batch_size=8, num_samples=2, show_progress=False)
    stacked = {"gaussian_noise": np.load(released_folder / "gaussian_noise.npy"),
               "frosted_glass_blur": np.load(released_folder / "glass_blur.npy")}
    labels = np.load(released_folder / "labels.npy").astype(np.int64)
    n = len(synthetic_test.images)
    for name, classifier in classifiers.items():
        assert results[name]["clean"] == numpy_accuracy(classifier, clean_images, clean_labels)
        assert results[name]["num_examples"] == 20 and results[name]["num_clean_examples"] == 25
        for corruption, array in stacked.items():
            assert sorted(results[name]["corruptions"][corruption]) == ["2", "5"]
            for severity in (2, 5):
                block = slice((severity - 1) * n, (severity - 1) * n + 20)
                expected = numpy_accuracy(classifier, array[block], labels[block])
                assert results[name]["corruptions"][corruption][str(severity)] == expected
    # Samples for the contact sheet: the first images of each evaluated set.
    assert set(samples) == {"clean", ("gaussian_noise", 2), ("gaussian_noise", 5), ("frosted_glass_blur", 2),
                            ("frosted_glass_blur", 5)}
    np.testing.assert_array_equal(samples[("frosted_glass_blur", 5)], stacked["frosted_glass_blur"][4 * n : 4 * n + 2])


@pytest.mark.parametrize("spec, expected", [
    ("benchmark", 15), ("extra", 4), ("all", 19), ("glass_blur, fog,fog", 2), ("extra,gaussian_noise", 5)])
def test_corruption_lists(spec, expected):
    names = eval_config.parse_corruptions(spec)
    assert len(names) == expected and len(set(names)) == expected
    if spec.startswith("glass"):
        assert names == ("frosted_glass_blur", "fog")


@pytest.mark.parametrize("spec, fragment", [
    ("0,1", "severity 0 is outside 1..5"), ("6", "severity 6 is outside 1..5"), ("two", "'two' is not an integer"),
    ("", "no severity")])
def test_bad_severities(spec, fragment):
    with pytest.raises(UsageError) as caught:
        eval_config.parse_severities(spec)
    assert fragment in str(caught.value)


def test_unknown_corruption_lists_the_valid_ones():
    with pytest.raises(UsageError) as caught:
        eval_config.parse_corruptions("fog,snowy")
    assert "unknown corruption 'snowy'" in str(caught.value) and "speckle_noise" in str(caught.value)


def test_default_model_names_come_from_the_run_folder():
    paths = ["saved_models/mocse_c10/3", "saved_models/preact/model.keras", "a/preact.keras", "x/mocse_c10/1"]
    assert eval_config.default_model_names(paths) == ["mocse_c10", "preact", "preact_2", "mocse_c10_2"]
