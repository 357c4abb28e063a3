"""The local cifar-10-batches-py reader: any batch length, either folder level, and one clear error per bad input."""

import os
import pickle

import numpy as np
import pytest

from mocse_tf.data import load_arrays
from mocse_tf.errors import UsageError

NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _images(count, start):
    """HWC images whose every pixel value is known: value = (start + image, row, col, channel) mixed mod 256."""
    index = np.arange(count)[:, None, None, None] + start
    row = np.arange(32)[None, :, None, None]
    col = np.arange(32)[None, None, :, None]
    channel = np.arange(3)[None, None, None, :]
    return ((index * 7 + row * 3 + col * 5 + channel * 101) % 256).astype(np.uint8)


def _write_batch(path, images, labels, *, bytes_keys=True):
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # channel-major, as the original release
    batch = {"batch_label": "test", "labels": list(labels), "data": rows}
    if bytes_keys:
        batch = {key.encode(): value for key, value in batch.items()}
    with open(path, "wb") as file:
        pickle.dump(batch, file, protocol=2)


@pytest.fixture
def cifar_parent(tmp_path):
    """A parent folder holding cifar-10-batches-py with batches of 3, 5 and 1 images (and batch 10 after 2)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    _write_batch(folder / "data_batch_1", _images(3, 0), [0, 1, 2])
    _write_batch(folder / "data_batch_2", _images(5, 3), [3, 4, 5, 6, 7], bytes_keys=False)
    _write_batch(folder / "data_batch_10", _images(1, 8), [9])
    _write_batch(folder / "test_batch", _images(4, 100), [9, 8, 7, 6])
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({b"label_names": NAMES, b"num_vis": 3072}, file, protocol=2)
    return tmp_path


def test_reads_batches_of_any_length_in_numeric_order(cifar_parent):
    train = load_arrays("cifar10_local", "train", local_dir=cifar_parent)
    assert train.images.dtype == np.uint8 and train.images.shape == (9, 32, 32, 3)
    np.testing.assert_array_equal(train.images, _images(9, 0))  # channel-major rows -> the original HWC pixels
    np.testing.assert_array_equal(train.labels, np.arange(10)[[0, 1, 2, 3, 4, 5, 6, 7, 9]])
    assert train.labels.dtype == np.int64
    assert train.class_names[0] == "airplane" and train.class_names[-1] == "truck" and train.num_classes == 10

    test = load_arrays("cifar10_local", "test", local_dir=cifar_parent / "cifar-10-batches-py", num_examples=3)
    np.testing.assert_array_equal(test.images, _images(3, 100))
    np.testing.assert_array_equal(test.labels, [9, 8, 7])


def test_missing_meta_falls_back_to_the_cifar10_names(cifar_parent):
    os.remove(cifar_parent / "cifar-10-batches-py" / "batches.meta")
    assert load_arrays("cifar10_local", "test", local_dir=cifar_parent).class_names[3] == "cat"


def test_real_cifar10_mini(cifar10_mini_dir):
    test = load_arrays("cifar10_local", "test", local_dir=cifar10_mini_dir.parent)
    assert test.images.shape == (1017, 32, 32, 3)
    np.testing.assert_array_equal(test.labels[:10], [3, 8, 8, 0, 6, 6, 1, 6, 3, 1])
    train = load_arrays("cifar10_local", "train", local_dir=cifar10_mini_dir)
    assert len(train) == 5 * 1017 and set(np.unique(train.labels)) == set(range(10))
    # Real photos, the right way up: the sky (top rows) is brighter than the ground on average.
    assert train.images[:, :8].mean() > train.images[:, -8:].mean()


def _error(**kwargs):
    with pytest.raises(UsageError) as caught:
        load_arrays("cifar10_local", kwargs.pop("split", "train"), **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_local_dir_argument():
    assert "`dataset`=cifar10_local needs `local_dir`=PATH" in _error(local_dir=None)


def test_missing_folder(tmp_path):
    message = _error(local_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in message and "does not exist" in message
    assert "cifar-10-batches-py" in message and "data_batch_1" in message


def test_folder_without_batch_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not data")
    message = _error(local_dir=tmp_path)
    assert str(tmp_path) in message and "no train batch file" in message
    assert "no test batch file" in _error(local_dir=tmp_path, split="test")


def test_a_file_instead_of_a_folder(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(b"x")
    assert "is not a folder" in _error(local_dir=tmp_path / "data_batch_1")


def test_malformed_pickle_names_the_file(cifar_parent):
    folder = cifar_parent / "cifar-10-batches-py"
    (folder / "data_batch_2").write_bytes(b"\x80\x02this is not a pickle")
    message = _error(local_dir=cifar_parent)
    assert str(folder / "data_batch_2") in message and "not a readable CIFAR-10 python batch" in message


def test_wrong_array_size_names_the_file_and_the_shape(cifar_parent):
    folder = cifar_parent / "cifar-10-batches-py"
    with open(folder / "test_batch", "wb") as file:
        pickle.dump({b"data": np.zeros((4, 3000), np.uint8), b"labels": [0, 1, 2, 3]}, file, protocol=2)
    message = _error(local_dir=cifar_parent, split="test")
    assert str(folder / "test_batch") in message and "[4, 3000]" in message and "3072" in message


def test_label_count_mismatch_and_missing_key(cifar_parent):
    folder = cifar_parent / "cifar-10-batches-py"
    _write_batch(folder / "test_batch", _images(4, 0), [1, 2])
    assert "4 images but 2 labels" in _error(local_dir=cifar_parent, split="test")
    with open(folder / "test_batch", "wb") as file:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8)}, file, protocol=2)
    assert "no 'labels' entry" in _error(local_dir=cifar_parent, split="test")


def test_pickle_that_would_run_code_is_refused(cifar_parent, tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (os.mkdir, (str(tmp_path / "pwned"),))

    folder = cifar_parent / "cifar-10-batches-py"
    with open(folder / "test_batch", "wb") as file:
        pickle.dump({b"data": RunsCode(), b"labels": []}, file, protocol=2)
    message = _error(local_dir=cifar_parent, split="test")
    assert "refusing to load" in message and "mkdir" in message
    assert not (tmp_path / "pwned").exists()
