"""tf.distribute training: MirroredStrategy over 2 logical CPUs, a 2-worker MultiWorkerMirroredStrategy run on
127.0.0.1, and the strategy flag's checks. Every distributed run is its own process (device splits and
collective runtimes cannot be undone inside a process)."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from mocse_tf.errors import UsageError
from mocse_tf.training import distribute
from mocse_tf.training.config import TrainConfig

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

# Measured: 1.3e-6 (the two runs do the same arithmetic up to the all-reduce). A wrong loss scale would give
# about 1.0 (every update doubled or halved).
MIRRORED_TOLERANCE = 1e-4


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO_ROOT), **extra)
    return env


def _wait_all(processes, timeout):
    """Waits for every process; kills the rest as soon as one fails or time runs out."""
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=timeout)
            results.append((process.returncode, stdout, stderr))
            if process.returncode != 0:
                break
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results


def _start(args, **kwargs):
    return subprocess.Popen([sys.executable, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def test_mirrored_two_replicas_match_one_device(tmp_path):
    driver = HERE / "mirrored_driver.py"
    runs = {r: _start([driver, r, tmp_path / f"replicas{r}.npz"], env=_env()) for r in (1, 2)}
    for returncode, _, stderr in _wait_all(list(runs.values()), timeout=400):
        assert returncode == 0, stderr[-3000:]
    one, two = (np.load(tmp_path / f"replicas{r}.npz") for r in (1, 2))
    assert int(one["replicas"]) == 1 and int(two["replicas"]) == 2
    assert int(one["steps"]) == int(two["steps"]) == 4
    np.testing.assert_array_equal(one["initial"], two["initial"])  # the same seeded start
    update_one, update_two = one["final"] - one["initial"], two["final"] - two["initial"]
    assert np.linalg.norm(update_one) > 1e-2  # training moved the weights
    relative = np.linalg.norm(update_two - update_one) / np.linalg.norm(update_one)
    assert relative < MIRRORED_TOLERANCE, f"mirrored updates differ from one device by {relative:.2e}"
    # The logged loss (class CE + 0.5 * expert BCE) is the global-batch mean, not a sum over replicas.
    assert float(two["loss"]) == pytest.approx(float(one["loss"]), abs=1e-5)
    assert float(two["bce"]) == pytest.approx(float(one["bce"]), abs=1e-5)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_run_on_localhost_ends_with_equal_weights(tmp_path):
    hosts = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    flags = ["--arch=preact_resnet18", "--width=4", "--dataset=synthetic", "--num_train_examples=64",
             "--num_test_examples=32", "--batch_size=16", "--epochs=2", "--steps_per_epoch=2", "--verbose=0",
             "--strategy=multi_worker", f"--output_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}",
             "--run_name=mw"]
    workers = []
    for index in range(2):
        scratch_root = tmp_path / f"tmp{index}"
        scratch_root.mkdir()
        tf_config = json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})
        workers.append(_start([HERE / "worker_driver.py", tmp_path / f"weights{index}.npz", *flags],
                              env=_env(TF_CONFIG=tf_config, TMPDIR=str(scratch_root)), cwd=tmp_path))
    for returncode, _, stderr in _wait_all(workers, timeout=400):
        assert returncode == 0, stderr[-3000:]

    chief, other = (np.load(tmp_path / f"weights{i}.npz") for i in range(2))
    # Gradients are all-reduced, so the trained weights are bit-identical. (BatchNorm moving statistics are
    # each replica's own in Keras 3 and are not compared; the chief exports its own.)
    np.testing.assert_array_equal(chief["trainable"], other["trainable"])

    # The chief alone wrote the run folder and the export; worker 1's scratch folder is gone.
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["epochs_trained"] == 2
    assert sorted(os.listdir(tmp_path / "exports" / "mw")) == ["1", "class_names.json", "model.keras", "owner.json"]
    assert os.listdir(tmp_path / "tmp1") == []


def test_strategy_flag_errors_are_usage_errors(monkeypatch):
    with pytest.raises(UsageError, match="unknown strategy 'gpu'; choose one of default, mirrored"):
        TrainConfig(strategy="gpu").validate()
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UsageError, match="needs the TF_CONFIG environment variable"):
        distribute.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}')
    with pytest.raises(UsageError, match="TF_CONFIG is not a valid cluster description"):
        distribute.make_strategy("multi_worker")
    monkeypatch.delenv("TPU_NAME", raising=False)
    if not any(pathlib.Path("/dev").glob("accel*")):
        with pytest.raises(UsageError, match="found no TPU"):
            distribute.make_strategy("tpu")


def test_default_strategy_is_the_chief_and_checks_the_global_batch():
    strategy = distribute.make_strategy("default")
    assert distribute.is_chief(strategy)
    assert strategy.num_replicas_in_sync == 1
    distribute.check_global_batch(7, strategy)  # one replica takes any batch size


def test_global_batch_must_split_evenly():
    class FourReplicas:
        num_replicas_in_sync = 4

    distribute.check_global_batch(128, FourReplicas())
    with pytest.raises(UsageError, match="`batch_size`=130 is the global batch .* use a multiple of 4"):
        distribute.check_global_batch(130, FourReplicas())
