"""A run folder: its configuration, checkpoints and history, so that rerunning a command resumes it.

Layout of `output_dir`: run_config.json (what is trained), checkpoints/ (network + optimizer + epoch),
history.json (one entry per finished epoch), logs/ (TensorBoard), results.json (final metrics).
Every JSON file is written atomically (mocse_tf.files), so an interruption never leaves half a file.
"""

import dataclasses
import os

import tensorflow as tf

from mocse_tf import ownership
from mocse_tf.files import read_json, write_json

_WAY_OUT = ("use a new `output_dir` or `run_name`, rerun with the same flags to resume, or pass `overwrite` to "
            "replace it")
_TEXTS = {
    "cannot": "cannot create `output_dir` {folder}",
    "unrecorded": "`output_dir` {folder} is not empty and holds no run_config.json; choose a new `output_dir` (or "
                  "`run_name`) or empty that folder",
    "different": "`output_dir` {folder} holds a different run ({differences}); {way_out}",
}


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
        """Creates the folder or checks that it holds this same run (mocse_tf.ownership); returns True when
        resuming."""
        return ownership.claim(self.path, dataclasses.asdict(self.config), _WAY_OUT, self.config.overwrite,
                               file=self.CONFIG, keys=self.config.identity(), texts=_TEXTS)

    def checkpoint_manager(self, checkpoint):
        return tf.train.CheckpointManager(checkpoint, self.checkpoint_dir, max_to_keep=2)

    def history(self):
        return read_json(os.path.join(self.path, self.HISTORY), default=[])

    def write_history(self, history):
        write_json(os.path.join(self.path, self.HISTORY), history)

    def write_results(self, results):
        write_json(os.path.join(self.path, self.RESULTS), results)
