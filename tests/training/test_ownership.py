"""A run's export folder belongs to that run: another configuration with the same --run_name is stopped before any
work, the same command again is a no-op, --overwrite takes the folder over, and a killed run's temporaries go."""

import json
import subprocess
import sys

import pytest

from mocse_tf import ownership
from mocse_tf.errors import UsageError
from mocse_tf.training.config import TrainConfig
from mocse_tf.training.run import train


def _config(tmp_path, run_folder, **overrides):
    values = dict(arch="preact_resnet18", width=2, dataset="synthetic", num_train_examples=100,
                  num_test_examples=50, batch_size=50, epochs=1, output_dir=str(tmp_path / run_folder),
                  export_dir=str(tmp_path / "exports"), run_name="shared", verbose=0, export=True)
    values.update(overrides)
    return TrainConfig(**values)


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_same_run_name_other_configuration_is_refused_then_overwrite_takes_over(tmp_path):
    export = tmp_path / "exports" / "shared"
    first = _config(tmp_path, "run_a")
    train(first)
    model_bytes = (export / "model.keras").read_bytes()

    # Another configuration (another seed, its own run folder) under the same --run_name: one line, no work done.
    with pytest.raises(UsageError) as caught:
        train(_config(tmp_path, "run_b", seed=1))
    message = str(caught.value)
    assert str(export) in message and "belongs to another run" in message and "seed=0 there vs 1 now" in message
    assert "`run_name`" in message and "`overwrite`" in message
    assert not (tmp_path / "run_b").exists()
    assert (export / "model.keras").read_bytes() == model_bytes and sorted(p.name for p in export.iterdir()) == [
        "1", "class_names.json", "model.keras", "owner.json"]

    # A killed export or JSON write leaves temporaries; the same command again removes them and adds no version.
    dead = _dead_pid()
    (export / f".tmp-2-{dead}").mkdir()
    (export / f"model.keras.tmp-{dead}.keras").write_bytes(b"half")
    (tmp_path / "run_a" / f"history.json.tmp-{dead}").write_text("[")
    train(first)
    assert sorted(p.name for p in export.iterdir()) == ["1", "class_names.json", "model.keras", "owner.json"]
    assert not (tmp_path / "run_a" / f"history.json.tmp-{dead}").exists()

    # --overwrite: the other configuration replaces the export, and the record names the new owner.
    train(_config(tmp_path, "run_b", seed=1, overwrite=True))
    assert json.loads((export / "owner.json").read_text())["settings"]["seed"] == 1
    assert (export / "model.keras").read_bytes() != model_bytes


def test_a_folder_of_unknown_origin_or_a_file_is_refused(tmp_path):
    owner = {"tool": "bin/eval_c", "settings": {"seed": 0}}
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "report.json").write_text("{}")
    for overwrite in (False, True):  # files of unknown origin are never deleted, not even with overwrite
        with pytest.raises(ownership.FolderOwnedByOther, match="holds files .*report.json.* and no record.*another"):
            ownership.claim(str(tmp_path / "foreign"), owner, "choose another", overwrite=overwrite)
    assert (tmp_path / "foreign" / "report.json").read_text() == "{}"
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ownership.FolderOwnedByOther, match="is a file, not a folder"):
        ownership.claim(str(tmp_path / "a_file"), owner, "choose another", overwrite=True)
    assert not ownership.claim(str(tmp_path / "new"), owner, "choose another")
    (tmp_path / "new" / "report.json").write_text("{}")  # the owner's results
    assert ownership.claim(str(tmp_path / "new"), owner, "choose another")
    with pytest.raises(ownership.FolderOwnedByOther, match="made by bin/eval_c, not bin/eval_adv"):
        ownership.claim(str(tmp_path / "new"), {"tool": "bin/eval_adv", "settings": {"seed": 0}}, "choose another")
    # A folder holding only another owner's record (its work failed before writing anything) is simply taken.
    (tmp_path / "new" / "report.json").unlink()
    assert not ownership.claim(str(tmp_path / "new"), {"tool": "bin/eval_adv", "settings": {}}, "choose another")


def test_run_folder_of_another_configuration_is_replaced_only_with_overwrite(tmp_path):
    train(_config(tmp_path, "run", export=False))
    with pytest.raises(UsageError, match="holds a different run .*seed=0 there vs 1 now.*`overwrite`"):
        train(_config(tmp_path, "run", export=False, seed=1))
    train(_config(tmp_path, "run", export=False, seed=1, overwrite=True))
    assert json.loads((tmp_path / "run" / "run_config.json").read_text())["seed"] == 1


def test_a_record_of_its_own_compared_on_chosen_keys(tmp_path):
    """bin/train's run_config.json and bin/tune's search_config.json: the whole record is written, only `keys` are
    compared (in their order), the caller's texts are used, and overwrite empties the folder."""
    folder, dead = tmp_path / "run", _dead_pid()
    texts = {"different": "`output_dir` {folder} holds a different run ({differences}); {way_out}",
             "unrecorded": "`output_dir` {folder} holds no run.json"}

    def claim(record, overwrite=False):
        return ownership.claim(str(folder), record, "rerun", overwrite, file="run.json", keys=("b", "a"), texts=texts)

    assert not claim({"a": 1, "b": 2, "verbose": 0})
    (folder / "history.json").write_text("[]")
    (folder / f"history.json.tmp-{dead}").write_text("[")
    assert claim({"a": 1, "b": 2, "verbose": 1})  # a setting outside `keys` may change: resumed
    assert sorted(p.name for p in folder.iterdir()) == ["history.json", "run.json"]
    assert json.loads((folder / "run.json").read_text()) == {"a": 1, "b": 2, "verbose": 0}
    with pytest.raises(ownership.FolderOwnedByOther) as caught:
        claim({"a": 5, "b": 6})
    assert str(caught.value) == (f"`output_dir` {folder} holds a different run (b=2 there vs 6 now; a=1 there vs 5 "
                                 f"now); rerun")
    assert claim({"a": 5, "b": 6}, overwrite=True) is False
    assert sorted(p.name for p in folder.iterdir()) == ["run.json"]
    assert json.loads((folder / "run.json").read_text()) == {"a": 5, "b": 6}
    # Nothing but another record (its work failed before writing anything): simply taken, no overwrite needed.
    assert not claim({"a": 7, "b": 6})
    (folder / "run.json").unlink()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ownership.FolderOwnedByOther, match="holds no run.json"):
        claim({"a": 7, "b": 6})
    assert (folder / "notes.txt").read_text() == "mine"
    with pytest.raises(ownership.FolderOwnedByOther, match="holds no run.json"):  # not even with overwrite:
        claim({"a": 7, "b": 6}, overwrite=True)  # it may be the user's own files (`--output_dir=. --overwrite`)
    assert (folder / "notes.txt").read_text() == "mine"
