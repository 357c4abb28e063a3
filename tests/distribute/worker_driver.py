"""One worker of a multi-worker bin/train run, for the tests: python worker_driver.py WEIGHTS.npz --flags...

It runs the same `train()` as bin/train (TF_CONFIG names this worker) with one more callback that records
the network's weights after training. Non-chief workers save only into a scratch folder that is deleted, so
this record is how the test sees every worker's weights.
"""

from mocse_tf import cli  # noqa: F401  (first: quiets TensorFlow's start-up logs)

import sys

from absl import app

from mocse_tf import config_flags
from mocse_tf.training.config import TrainConfig

config_flags.define_flags(TrainConfig)
WEIGHTS_PATH = sys.argv.pop(1)


def main(argv):
    import keras
    import numpy as np

    from mocse_tf.training.run import train

    class RecordWeights(keras.callbacks.Callback):
        """Saves the network's weights whenever a fit ends; the last save holds the final weights."""

        def on_train_end(self, logs=None):
            network = self.model.network
            np.savez(WEIGHTS_PATH,
                     trainable=np.concatenate([w.numpy().ravel() for w in network.trainable_weights]),
                     non_trainable=np.concatenate([w.numpy().ravel() for w in network.non_trainable_weights]))

    train(config_flags.config_from_flags(TrainConfig), callbacks=[RecordWeights()])


if __name__ == "__main__":
    app.run(main)
