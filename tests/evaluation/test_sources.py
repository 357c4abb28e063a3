"""Corrupted-data sources: a released-layout folder (and broken ones), tfds cifar10_corrupted on mock data with
the offline fail-fast, and on-the-fly generation equal to `corrupt` with the documented per-chunk seeds."""

import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mocse_tf.corruptions import corrupt
from mocse_tf.data import tfds_source
from mocse_tf.errors import UsageError
from mocse_tf.evaluation import sources
from tests.evaluation.conftest import NUM_IMAGES, write_released_layout


def collect(dataset):
    images, labels, sizes = [], [], []
    for batch_images, batch_labels in dataset:
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
        sizes.append(len(batch_labels))
    return np.concatenate(images), np.concatenate(labels), sizes


# --- folder -------------------------------------------------------------------------------------------------


def test_folder_source_reads_each_severity_block(released_folder, synthetic_test):
    source = sources.FolderSource(str(released_folder), ["gaussian_noise", "glass_blur"])
    assert source.per_severity == NUM_IMAGES and source.num_examples == NUM_IMAGES and source.manifest is None
    images, labels, sizes = collect(source.dataset("frosted_glass_blur", 3, batch_size=8))
    expected = ((synthetic_test.images.astype(np.int64) + 7 * 3) % 256).astype(np.uint8)
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(labels, synthetic_test.labels)
    assert labels.dtype == np.int64 and sizes == [8, 8, 8, 6]


def test_folder_source_takes_the_first_examples_of_a_block(released_folder, synthetic_test):
    source = sources.FolderSource(str(released_folder), ["gaussian_noise"], num_examples=5)
    images, labels, _ = collect(source.dataset("gaussian_noise", 5, batch_size=500))
    np.testing.assert_array_equal(images, ((synthetic_test.images[:5].astype(np.int64) + 5) % 256).astype(np.uint8))
    np.testing.assert_array_equal(labels, synthetic_test.labels[:5])


def _break(folder, how):
    if how == "missing":
        (folder / "glass_blur.npy").unlink()
    elif how == "short":
        np.save(folder / "glass_blur.npy", np.zeros((5 * NUM_IMAGES - 5, 32, 32, 3), np.uint8))
    elif how == "float":
        np.save(folder / "glass_blur.npy", np.zeros((5 * NUM_IMAGES, 32, 32, 3), np.float32))
    elif how == "damaged":
        (folder / "glass_blur.npy").write_bytes(b"not an npy file")
    elif how == "labels":
        np.save(folder / "labels.npy", np.zeros(5 * NUM_IMAGES + 1, np.uint8))
    elif how == "no_labels":
        (folder / "labels.npy").unlink()


@pytest.mark.parametrize("how, fragments", [
    ("missing", ["lacks glass_blur.npy"]),
    ("short", ["glass_blur.npy has dtype uint8 and shape (145, 32, 32, 3)", "expected uint8 (150, 32, 32, 3)"]),
    ("float", ["glass_blur.npy has dtype float32"]),
    ("damaged", ["cannot read", "glass_blur.npy"]),
    ("labels", ["labels.npy has dtype uint8 and shape (151,)", "[5 N]"]),
    ("no_labels", ["labels.npy is missing"]),
])
def test_broken_folders_say_which_file_and_what_shape(released_folder, how, fragments):
    _break(released_folder, how)
    with pytest.raises(UsageError) as caught:
        sources.FolderSource(str(released_folder), ["gaussian_noise", "frosted_glass_blur"])
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_folder_source_needs_a_folder(tmp_path):
    with pytest.raises(UsageError, match="needs `c_dir`"):
        sources.FolderSource(None, ["fog"])
    with pytest.raises(UsageError, match="is not a folder"):
        sources.FolderSource(str(tmp_path / "absent"), ["fog"])


# --- tfds ---------------------------------------------------------------------------------------------------


def test_tfds_source_prepares_from_the_manual_tar_and_reads_configs(tmp_path, monkeypatch):
    # With CIFAR-10-C.tar in the manual folder no network is needed (the probe must not even run). mock_data swaps
    # the records for random ones and download_and_prepare for a no-op; the rest is the real tfds loader.
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    (manual / "CIFAR-10-C.tar").write_bytes(b"")
    monkeypatch.setattr(tfds_source, "network_reachable", lambda: pytest.fail("probed the network"))
    with tfds.testing.mock_data(num_examples=9):
        source = sources.TfdsSource(data_dir=str(tmp_path), num_examples=7)
        images, labels, sizes = collect(source.dataset("glass_blur", 4, batch_size=4))
    assert images.dtype == np.uint8 and images.shape == (7, 32, 32, 3)
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 10
    assert sizes == [4, 3] and source.num_classes == 10


def test_tfds_source_offline_fails_fast_with_the_preparation_steps(tmp_path, monkeypatch):
    # The probe itself (mocse_tf.data.tfds_source) is tested with the data loaders; here: what happens after it.
    monkeypatch.setattr(tfds_source, "network_reachable", lambda: False)
    source = sources.TfdsSource(data_dir=str(tmp_path))
    started = time.monotonic()
    with pytest.raises(UsageError) as caught:
        source.dataset("fog", 2, batch_size=10)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    manual = tmp_path / "downloads" / "manual"
    assert "cifar10_corrupted/fog_2" in message and "not prepared" in message and "\n" not in message
    assert f"{manual / 'CIFAR-10-C.tar'}" in message and f"`data_dir`={tmp_path}" in message
    assert "`source`=folder" in message and "`source`=generate" in message
    assert not manual.exists()  # nothing half-downloaded left behind


def test_tfds_source_rejects_bad_names_and_severities(tmp_path):
    source = sources.TfdsSource(data_dir=str(tmp_path))
    with pytest.raises(UsageError, match="unknown corruption 'blur'"):
        source.dataset("blur", 1, batch_size=10)
    with pytest.raises(UsageError, match="from 1 to 5; received 6"):
        source.dataset("fog", 6, batch_size=10)


# --- on the fly ---------------------------------------------------------------------------------------------


def test_generated_source_equals_corrupt_with_the_chunk_seeds():
    rng = np.random.default_rng(0)
    count = sources.SEED_CHUNK + 20  # two chunks, the second one short
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    source = sources.GeneratedSource(images, labels, seed=5)
    generated, generated_labels, sizes = collect(source.dataset("gaussian_noise", 3, batch_size=100))
    first = corrupt(images[: sources.SEED_CHUNK], "gaussian_noise", 3,
                    seed=sources.chunk_seed(5, "gaussian_noise", 3, 0)).numpy()
    second = corrupt(images[sources.SEED_CHUNK :], "gaussian_noise", 3,
                     seed=sources.chunk_seed(5, "gaussian_noise", 3, 1)).numpy()
    np.testing.assert_array_equal(generated, np.concatenate([first, second]))
    np.testing.assert_array_equal(generated_labels, labels)
    assert sizes == [100, 100, 70]
    # The batch size does not change the images; the seed does (and so do the corruption and the severity).
    np.testing.assert_array_equal(collect(source.dataset("gaussian_noise", 3, batch_size=500))[0], generated)
    other_seed = collect(sources.GeneratedSource(images, labels, seed=6).dataset("gaussian_noise", 3, 500))[0]
    assert np.mean(other_seed != generated) > 0.5
    seeds = {tuple(sources.chunk_seed(5, c, s, k).numpy()) for c in ("gaussian_noise", "shot_noise")
             for s in (1, 2) for k in (0, 1)}
    assert len(seeds) == 8
