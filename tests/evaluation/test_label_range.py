"""A corrupted-data folder whose labels fall outside its class count is refused before any evaluation (before,
such an image silently counted as a miss)."""

import numpy as np
import pytest

from mocse_tf.errors import UsageError
from mocse_tf.evaluation.config import EvalConfig
from mocse_tf.evaluation.make_c import run_make_c
from mocse_tf.evaluation.sources import FolderSource


def test_make_c_folder_with_a_label_beyond_its_class_count_is_refused(tmp_path):
    folder = tmp_path / "synthetic-c"
    run_make_c(EvalConfig(dataset="synthetic", output_dir=str(folder), num_examples=6, corruptions="gaussian_noise"),
               show_progress=False)
    assert FolderSource(str(folder), ["gaussian_noise"]).num_classes == 10  # the intact folder is accepted
    labels = np.load(folder / "labels.npy")
    labels[7] = 12
    np.save(folder / "labels.npy", labels)
    with pytest.raises(UsageError, match=r"labels.npy holds label 12 at index 7, outside the 10 classes make_c.json "
                                         r"records \(labels 0 to 9\)"):
        FolderSource(str(folder), ["gaussian_noise"])


def test_released_layout_with_a_negative_label_is_refused(tmp_path):
    np.save(tmp_path / "labels.npy", np.array([0, 1, -1, 2, 3], np.int64))
    np.save(tmp_path / "gaussian_noise.npy", np.zeros((5, 32, 32, 3), np.uint8))
    with pytest.raises(UsageError, match="holds label -1 at index 2"):
        FolderSource(str(tmp_path), ["gaussian_noise"])
