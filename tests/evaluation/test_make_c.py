"""make_c: the released layout, the same images as on-the-fly generation, and resuming after an interruption."""

import json
import os

import numpy as np
import pytest

from mocse_tf.corruptions import corrupt
from mocse_tf.errors import UsageError
from mocse_tf.evaluation import make_c, sources

CORRUPTIONS = ("gaussian_noise", "frosted_glass_blur")


def write(output_dir, data, seed=0, corruption_names=CORRUPTIONS):
    return make_c.write_corrupted_set(str(output_dir), data.images, data.labels, corruption_names,
                                      num_classes=data.num_classes, seed=seed, dataset_info={"dataset": "synthetic"},
                                      show_progress=False)


def test_layout_and_contents(tmp_path, synthetic_test):
    outcome = write(tmp_path, synthetic_test, seed=3)
    assert outcome == {"written": list(CORRUPTIONS), "skipped": []}
    assert sorted(os.listdir(tmp_path)) == ["gaussian_noise.npy", "glass_blur.npy", "labels.npy", "make_c.json"]
    n = len(synthetic_test.images)
    labels = np.load(tmp_path / "labels.npy")
    assert labels.dtype == np.uint8 and labels.shape == (5 * n,)
    np.testing.assert_array_equal(labels, np.tile(synthetic_test.labels, 5))
    glass = np.load(tmp_path / "glass_blur.npy")
    assert glass.dtype == np.uint8 and glass.shape == (5 * n, 32, 32, 3)
    for severity in (1, 4):  # block s holds severity s: the images `corrupt` gives with the chunk seed
        expected = corrupt(synthetic_test.images, "frosted_glass_blur", severity,
                           seed=sources.chunk_seed(3, "frosted_glass_blur", severity, 0)).numpy()
        np.testing.assert_array_equal(glass[(severity - 1) * n : severity * n], expected)
    manifest = json.loads((tmp_path / "make_c.json").read_text())
    assert manifest["seed"] == 3 and manifest["num_examples"] == n and manifest["dataset"] == "synthetic"
    assert sorted(manifest["complete"]) == sorted(CORRUPTIONS)


def test_a_rerun_skips_complete_files_and_redoes_an_interrupted_one(tmp_path, synthetic_test):
    write(tmp_path, synthetic_test)
    noise_path, glass_path = tmp_path / "gaussian_noise.npy", tmp_path / "glass_blur.npy"
    first_glass = np.load(glass_path)
    noise_stamp = os.stat(noise_path).st_mtime_ns
    # An interruption while writing glass blur: the final file is absent and a half-written partial file remains.
    glass_path.unlink()
    (tmp_path / "glass_blur.npy.partial").write_bytes(b"\x93NUMPY half written")
    outcome = write(tmp_path, synthetic_test)
    assert outcome == {"written": ["frosted_glass_blur"], "skipped": ["gaussian_noise"]}
    assert os.stat(noise_path).st_mtime_ns == noise_stamp  # untouched
    np.testing.assert_array_equal(np.load(glass_path), first_glass)  # the same images again
    assert not (tmp_path / "glass_blur.npy.partial").exists()
    assert write(tmp_path, synthetic_test) == {"written": [], "skipped": list(CORRUPTIONS)}


def test_resuming_with_other_settings_is_refused(tmp_path, synthetic_test):
    write(tmp_path, synthetic_test, corruption_names=("gaussian_noise",))
    with pytest.raises(UsageError) as caught:
        write(tmp_path, synthetic_test, seed=1)
    assert "seed: folder 0, now 1" in str(caught.value) and "new `output_dir`" in str(caught.value)


def test_a_foreign_folder_is_not_overwritten(tmp_path, synthetic_test):
    np.save(tmp_path / "fog.npy", np.zeros((5, 32, 32, 3), np.uint8))
    with pytest.raises(UsageError, match="holds fog.npy but no make_c.json"):
        write(tmp_path, synthetic_test)


def test_labels_are_int64_beyond_256_classes(tmp_path, synthetic_test):
    make_c.write_labels(str(tmp_path), synthetic_test.labels, num_classes=300)
    labels = np.load(tmp_path / "labels.npy")
    assert labels.dtype == np.int64 and labels.shape == (5 * len(synthetic_test.labels),)
