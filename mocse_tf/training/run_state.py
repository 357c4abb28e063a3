"""A run folder: its configuration, checkpoints and history, so that rerunning a command resumes it.

Layout of `output_dir`: run_config.json (what is trained), checkpoints/ (network + optimizer + epoch),
history.json (one entry per finished epoch), logs/ (TensorBoard), results.json (final metrics).
Every JSON file is written atomically (mocse_tf.files), so an interruption never leaves half a file.
"""

import dataclasses
import os

import tensorflow as tf

from mocse_tf.errors import UsageError
from mocse_tf.files import read_json, write_json
from mocse_tf.ownership import empty_folder, remove_stale_temporaries


class RunFolder:
    """Claims `output_dir` for a configuration, refusing a folder that holds a different run."""

    CONFIG = "run_config.json"
    HISTORY = "history.json"
    RESULTS = "results.json"

    def __init__(self, config):
        self.config = config
        self.path = config.output_dir
        self.checkpoint_dir = os.path.join(self.path, "checkpoints")
        self.log_dir = os.path.join(self.path, "logs")

    def claim(self):
        """Creates the folder or checks that it holds this same run; returns True when resuming."""
        config_path = os.path.join(self.path, self.CONFIG)
        if os.path.isdir(self.path) and os.listdir(self.path):
            stored = read_json(config_path)
            if stored is None:
                raise UsageError(f"`output_dir` {self.path} is not empty and holds no {self.CONFIG}; "
                                 f"choose a new `output_dir` (or `run_name`) or empty that folder")
            stored_identity = {k: v for k, v in stored.items() if k not in self.config.COSMETIC}
            differences = [f"{k}={stored_identity.get(k)!r} there vs {v!r} now"
                           for k, v in self.config.identity().items() if stored_identity.get(k) != v]
            if not differences:
                remove_stale_temporaries(self.path)
                return True
            if not self.config.overwrite:
                raise UsageError(f"`output_dir` {self.path} holds a different run ({'; '.join(differences[:3])}); "
                                 f"use a new `output_dir` or `run_name`, rerun with the same flags to resume, or "
                                 f"pass `overwrite` to replace it")
            empty_folder(self.path)
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as err:
            raise UsageError(f"cannot create `output_dir` {self.path}: {err.strerror or err}") from None
        write_json(config_path, dataclasses.asdict(self.config))
        return False

    def checkpoint_manager(self, checkpoint):
        return tf.train.CheckpointManager(checkpoint, self.checkpoint_dir, max_to_keep=2)

    def history(self):
        return read_json(os.path.join(self.path, self.HISTORY), default=[])

    def write_history(self, history):
        write_json(os.path.join(self.path, self.HISTORY), history)

    def write_results(self, results):
        write_json(os.path.join(self.path, self.RESULTS), results)
