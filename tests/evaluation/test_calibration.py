"""Expected calibration error against a NumPy transcription of Guo et al.'s definition and a hand-computed case."""

import numpy as np
import pytest

from mocse_tf.evaluation import calibration
from tests.evaluation.report_csv import read_csv


def numpy_ece(logits, labels, num_bins=15):
    """Guo et al.: bins ((m-1)/M, m/M], ECE = sum_m |B_m|/n |acc(B_m) - conf(B_m)|, written as a loop over edges."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    confidences = probabilities.max(axis=1)
    accuracies = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    ece = 0.0
    for lower, upper in zip(edges[:-1], edges[1:]):
        in_bin = (confidences > lower) & (confidences <= upper)
        if in_bin.any():
            ece += in_bin.mean() * abs(accuracies[in_bin].mean() - confidences[in_bin].mean())
    return ece


def ece_from_logits(logits, labels):
    """ECE of in-memory logits [n, N] and labels [n], as one batch through the evaluation's bin statistics."""
    return calibration.expected_calibration_error(calibration.bin_statistics(logits, labels).numpy())


@pytest.mark.parametrize("scale", [0.5, 3.0, 12.0])  # under-confident to over-confident logits
def test_ece_matches_numpy_reference(scale):
    rng = np.random.default_rng(int(scale * 10))
    labels = rng.integers(0, 10, size=700)
    logits = rng.normal(size=(700, 10)) * scale
    logits[np.arange(350), labels[:350]] += scale  # half of them lean towards the right class
    want = numpy_ece(logits, labels)
    assert ece_from_logits(logits.astype(np.float32), labels) == pytest.approx(want, abs=1e-6)


def test_ece_accumulates_over_batches_exactly():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, size=300)
    logits = (rng.normal(size=(300, 10)) * 4).astype(np.float32)
    parts = [calibration.bin_statistics(logits[a:b], labels[a:b]).numpy() for a, b in ((0, 100), (100, 300))]
    assert calibration.expected_calibration_error(sum(parts)) == pytest.approx(numpy_ece(logits, labels), abs=1e-6)
    assert calibration.top1_correct_count(sum(parts)) == int((logits.argmax(1) == labels).sum())


def test_hand_computed_two_class_case():
    # Confidences 0.9, 0.9 (one right, one wrong) and 0.6 (right): bins (0.867, 0.933] and (0.533, 0.6].
    # ECE = 2/3 |0.5 - 0.9| + 1/3 |1 - 0.6| = 0.2667 + 0.1333 = 0.4.
    logits = np.log(np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6]], dtype=np.float32))
    labels = np.array([0, 1, 1])
    assert ece_from_logits(logits, labels) == pytest.approx(0.4, abs=1e-6)
    assert calibration.NUM_BINS == 15


def test_empty_statistics_give_nan():
    assert np.isnan(calibration.expected_calibration_error(np.zeros((3, 15))))


def test_neighbouring_bins_are_kept_apart():
    # 0.90 (wrong) falls in (13/15, 14/15], 0.95 (right) in (14/15, 1]: ECE = 0.5 * 0.9 + 0.5 * 0.05 = 0.475.
    # One merged bin would give |1 - 1.85| / 2 = 0.425.
    logits = np.log(np.array([[0.9, 0.1], [0.05, 0.95]], dtype=np.float32))
    labels = np.array([1, 1])
    assert ece_from_logits(logits, labels) == pytest.approx(0.475, abs=1e-6)


def test_corruption_evaluation_reports_ece_of_every_cell(tiny_models, released_folder, synthetic_test):
    """Through the real evaluation loop (batches of 8, the last short): ECE per cell equals the NumPy reference on
    the model's own logits, and the report shows it clean and averaged over corruptions."""
    from mocse_tf.evaluation import corruption_eval, report, sources
    from mocse_tf.loading import load_model

    classifier = load_model(tiny_models["keras"])
    source = sources.FolderSource(str(released_folder), ["gaussian_noise"], num_examples=20)
    clean_images, clean_labels = synthetic_test.images[:25], synthetic_test.labels[:25].astype(np.int64)
    results, _ = corruption_eval.evaluate({"m": classifier}, source, ["gaussian_noise"], [1, 4],
                                          clean=(clean_images, clean_labels), batch_size=8, show_progress=False)
    logits = lambda images: np.asarray(classifier.predict(images)["logits"], dtype=np.float64)
    calibration_result = results["m"]["calibration"]
    assert calibration_result["clean"] == pytest.approx(numpy_ece(logits(clean_images), clean_labels), abs=1e-6)
    stacked = np.load(released_folder / "gaussian_noise.npy")
    labels = np.load(released_folder / "labels.npy").astype(np.int64)
    n = len(synthetic_test.images)
    expected = {}
    for severity in (1, 4):
        block = slice((severity - 1) * n, (severity - 1) * n + 20)
        expected[severity] = numpy_ece(logits(stacked[block]), labels[block])
        assert calibration_result["corruptions"]["gaussian_noise"][str(severity)] == pytest.approx(
            expected[severity], abs=1e-6)

    built = report.build_report(results)
    assert built["summary"]["m"]["ece_corruption_average"] == pytest.approx((expected[1] + expected[4]) / 2,
                                                                            abs=1e-6)
    table = report.markdown_table(built)
    assert "| **Calibration** | ECE, natural samples (15 bins; lower is better) | " \
           f"{100 * calibration_result['clean']:.2f} |" in table
    assert "ECE, average over corruptions and severities" in table


def test_ece_survives_json_and_csv(tmp_path):
    from mocse_tf.evaluation import report

    models = {"m": {"clean": 0.5, "corruptions": {"fog": {"1": 0.4, "2": 0.3}},
                    "calibration": {"clean": 0.1, "corruptions": {"fog": {"1": 1 / 3, "2": 0.25}}}}}
    paths = report.write_report(report.build_report(models), tmp_path)
    assert report.load_report(paths["json"])["models"]["m"]["calibration"] == models["m"]["calibration"]
    assert read_csv(paths["csv"])["m"]["calibration"] == models["m"]["calibration"]
