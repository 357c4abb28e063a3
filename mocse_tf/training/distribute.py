"""tf.distribute for training (`strategy`): building the strategy, and which worker writes the run's files.

Batch sizes are global: each global batch is split evenly across the replicas, every replica's mean loss is
divided by the number of replicas and Keras sums the replicas' gradients, so one step follows the gradient of
the mean loss over the global batch whatever the replica count. (BatchNormalization statistics are each
replica's own, as in most multi-GPU CIFAR recipes.)
Only the chief writes the run folder and the exports. Other workers of a multi-worker run take part in every
save (saving can involve collective reads) but write into a private scratch folder that is deleted afterwards.
"""

import contextlib
import dataclasses
import glob
import json
import os
import shutil
import tempfile

import tensorflow as tf

from mocse_tf.errors import UsageError, check_choice

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def check_strategy(name):
    return check_choice("strategy", name, STRATEGIES)


def make_strategy(name):
    """The tf.distribute strategy `name`; call it first thing, before any other TensorFlow work."""
    check_strategy(name)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return _mirrored()
    if name == "multi_worker":
        return _multi_worker()
    return _tpu()


def _mirrored():
    """All local GPUs; without GPUs, all logical CPU devices (one CPU device unless the process split it)."""
    devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


def _multi_worker():
    """Synchronous data parallelism over the workers that TF_CONFIG lists (every worker runs the same command)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise UsageError("`strategy`=multi_worker needs the TF_CONFIG environment variable on every worker, e.g. "
                         "TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
                         "\"task\": {\"type\": \"worker\", \"index\": 0}}' (index 1 on the second host)")
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config["task"]
        workers = cluster[task["type"]]
        if not 0 <= int(task["index"]) < len(workers):
            raise IndexError(task["index"])
    except (ValueError, KeyError, TypeError, IndexError) as err:
        raise UsageError(f"TF_CONFIG is not a valid cluster description ({type(err).__name__}: {err}); it needs "
                         f"\"cluster\" (job name -> list of host:port) and \"task\" {{\"type\", \"index\"}} naming "
                         f"one of those hosts") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def _tpu():
    """A Cloud TPU: the local TPU VM, or the TPU named by the TPU_NAME environment variable."""
    tpu_name = os.environ.get("TPU_NAME", "")
    if not tpu_name and not glob.glob("/dev/accel*") and not glob.glob("/dev/vfio/[0-9]*"):
        raise UsageError("`strategy`=tpu found no TPU: run on a Cloud TPU VM, or set TPU_NAME to a TPU node's name "
                         "or grpc:// address; use `strategy`=mirrored for GPUs")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_name)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as err:
        raise UsageError(f"`strategy`=tpu could not reach the TPU {tpu_name or '(local)'}: {err}") from None
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
    """True for the one worker that writes files: always, except on non-chief workers of a multi-worker run."""
    resolver = getattr(strategy.extended, "_cluster_resolver", None) or getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def check_global_batch(batch_size, strategy):
    """Each replica must get the same number of examples, so that mean-of-replica-means is the global mean."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise UsageError(f"`batch_size`={batch_size} is the global batch and must split evenly over the "
                         f"{replicas} replicas of `strategy`; use a multiple of {replicas}")


@contextlib.contextmanager
def worker_outputs(config, strategy):
    """Yields the config whose folders this worker writes: the real ones on the chief, scratch ones elsewhere."""
    if is_chief(strategy):
        yield config
        return
    scratch = tempfile.mkdtemp(prefix="mocse_tf_worker_")
    try:
        yield dataclasses.replace(config, output_dir=os.path.join(scratch, "run"),
                                  export_dir=os.path.join(scratch, "exports"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
