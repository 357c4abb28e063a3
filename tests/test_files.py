"""mocse_tf.files: every writer replaces its target only with a complete file and leaves no temporary behind."""

import json
import os

import numpy as np
import pytest

from mocse_tf import files
from mocse_tf.errors import UsageError


def test_writers_round_trip_and_leave_only_their_file(tmp_path):
    files.write_json(str(tmp_path / "a.json"), {"b": 1, "a": [1.5]})
    files.write_csv(str(tmp_path / "t.csv"), ["x", "y"], [{"x": 1, "y": "z"}])
    files.write_npy(str(tmp_path / "n.npy"), np.arange(3, dtype=np.uint8))
    files.write_text(str(tmp_path / "sub" / "t.md"), "# table\n")
    assert files.read_json(str(tmp_path / "a.json")) == {"a": [1.5], "b": 1}
    assert (tmp_path / "a.json").read_text().startswith('{\n  "a"')  # sorted keys, indented
    assert (tmp_path / "t.csv").read_text().splitlines() == ["x,y", "1,z"]
    np.testing.assert_array_equal(np.load(tmp_path / "n.npy"), [0, 1, 2])
    assert sorted(os.listdir(tmp_path)) == ["a.json", "n.npy", "sub", "t.csv"]
    assert os.listdir(tmp_path / "sub") == ["t.md"]
    assert files.read_json(str(tmp_path / "absent.json"), default=[]) == []


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "report.json"
    files.write_json(str(path), {"version": 1})
    with pytest.raises(ValueError, match="not JSON"):
        with files.replacing(str(path)) as tmp:
            with open(tmp, "w") as handle:
                handle.write('{"version": 2')  # half written when the error strikes
            raise ValueError("not JSON")
    assert json.loads(path.read_text()) == {"version": 1}
    assert os.listdir(tmp_path) == ["report.json"]


def test_a_folder_is_renamed_into_place_whole(tmp_path):
    target = tmp_path / "exports" / "1"
    with files.replacing(str(target)) as tmp:
        os.makedirs(tmp)
        assert os.path.basename(tmp) == f"1.tmp-{os.getpid()}"  # the name mocse_tf.ownership cleans up
        open(os.path.join(tmp, "saved_model.pb"), "w").close()
    assert os.listdir(tmp_path / "exports") == ["1"] and os.listdir(target) == ["saved_model.pb"]


def test_an_unwritable_place_is_one_usage_error_naming_the_path(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(UsageError, match=f"cannot write {blocker}/x.json: "):
        files.write_json(str(blocker / "x.json"), {})
