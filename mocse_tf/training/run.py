"""The training entry point behind `bin/train`: data, model, resumable epochs, clean evaluation, export.

Each epoch gets its own data order and augmentation seed (derived from `seed` and the epoch number), and
a checkpoint is written after every epoch, so an interrupted run that is started again with the same command
continues at the first unfinished epoch and follows the same trajectory as an uninterrupted one.
"""

import math
import os
import sys
import time

import keras
import tensorflow as tf

from mocse_tf import export, ownership
from mocse_tf.data import load_arrays, make_pipeline
from mocse_tf.errors import UsageError
from mocse_tf.models import build_network
from mocse_tf.progress import EpochProgress
from mocse_tf.training import distribute
from mocse_tf.files import read_json, save_keras, write_json
from mocse_tf.training.run_state import RunFolder
from mocse_tf.training.optimizer import make_sgd
from mocse_tf.training.schedules import make_schedule
from mocse_tf.training.trainer import RobustTrainer


class NonFiniteLoss(Exception):
    """Raised by StopOnNonFiniteLoss; the run keeps its last good checkpoint and export."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops at the first batch whose loss is NaN or Inf, before that epoch's checkpoint is written."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise NonFiniteLoss(f"loss became {float(loss)} at batch {batch}")


EXPORT_WAY_OUT = "choose another `run_name` (or `export_dir`), or pass `overwrite` to replace it"


def export_base(config):
    """The export folder of a run: <export_dir>/<run_name>/ (model.keras, class_names.json, SavedModel versions)."""
    return os.path.join(config.export_dir, config.run_name)


def export_owner(config):
    """The owner record of a run's export folder: what is trained, so another configuration cannot share it."""
    return {"tool": "bin/train", "settings": config.identity()}


def epoch_seed(seed, epoch):
    """A distinct, reproducible data-order/augmentation seed for each epoch."""
    return int(seed) * 100_003 + int(epoch)


def non_finite_message(err, epoch, config, latest_checkpoint):
    """What stopped, what is kept (only a checkpoint that exists) and what to change."""
    if latest_checkpoint:
        kept = f"the last good checkpoint (epoch {epoch}) is kept in {os.path.dirname(latest_checkpoint)}"
    else:
        kept = "no epoch had finished, so there is no checkpoint to keep"
    fixes = ["lower `learning_rate`"] + (["use `precision`=float32"] if config.precision != "float32" else [])
    return f"training stopped: {err} in epoch {epoch + 1}; {kept}; {' or '.join(fixes)}"


def build_trainer(config, num_classes):
    """Network + trainer + optimizer for a configuration (no data, no checkpoint)."""
    from mocse_tf.training.adversarial import make_training_attack

    if config.precision != "float32":
        keras.mixed_precision.set_global_policy(config.precision)
    network = build_network(config.arch, num_classes=num_classes, width=config.width, aggregate=config.aggregate)
    return RobustTrainer(network, bce_weight=config.bce_weight, attack=make_training_attack(config))


def make_optimizer(config, steps_per_epoch):
    schedule = make_schedule(config.lr_schedule, config.learning_rate, steps_per_epoch * config.epochs)
    return make_sgd(schedule, momentum=config.momentum, nesterov=config.nesterov,
                    weight_decay=config.weight_decay, weight_decay_mode=config.weight_decay_mode)


def _steps_per_epoch(config, num_train):
    full = num_train // config.batch_size
    if full == 0:
        raise UsageError(f"`batch_size`={config.batch_size} is larger than the training set ({num_train} images); "
                         f"lower `batch_size`")
    return min(full, config.steps_per_epoch) if config.steps_per_epoch else full


def train(config, callbacks=()):
    """Trains (or resumes) the run described by `config`; returns the results dict written to results.json.

    `callbacks`: extra Keras callbacks for every epoch (custom logging, early stopping, ...).
    """
    config = config.resolved().validate()
    if config.export:  # another run's or an unwritable export folder is refused before any work, not after training
        ownership.check(export_base(config), export_owner(config), EXPORT_WAY_OUT, config.overwrite)
    # First: a multi-worker strategy must exist before any other TensorFlow work.
    strategy = distribute.make_strategy(config.strategy)
    distribute.check_global_batch(config.batch_size, strategy)
    resume_dir = RunFolder(config).checkpoint_dir  # every worker resumes from the chief's checkpoints
    with distribute.worker_outputs(config, strategy) as worker_config:
        return _train(worker_config, strategy, resume_dir, list(callbacks))


def _train(config, strategy, resume_dir, extra_callbacks):
    folder = RunFolder(config)

    train_data = load_arrays(config.dataset, "train", data_dir=config.data_dir, local_dir=config.local_dir,
                             seed=config.seed, num_examples=config.num_train_examples or None)
    test_data = load_arrays(config.dataset, "test", data_dir=config.data_dir, local_dir=config.local_dir,
                            seed=config.seed, num_examples=config.num_test_examples or None)
    resuming = folder.claim()
    keras.utils.set_random_seed(config.seed)
    steps_per_epoch = _steps_per_epoch(config, len(train_data.labels))

    with strategy.scope():  # variables made here are mirrored; Keras' fit then splits each global batch
        trainer = build_trainer(config, train_data.num_classes)
        optimizer = make_optimizer(config, steps_per_epoch)
        trainer.compile(optimizer=optimizer, jit_compile=config.jit_compile)
        optimizer.build(trainer.network.trainable_variables)
        epoch_counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = tf.train.Checkpoint(network=trainer.network, optimizer=optimizer, epoch=epoch_counter)
        manager = folder.checkpoint_manager(checkpoint)
        latest = tf.train.latest_checkpoint(resume_dir)
        if latest:
            checkpoint.restore(latest).assert_existing_objects_matched()
    start_epoch = int(epoch_counter.numpy())
    history = folder.history()[:start_epoch]
    if resuming:
        print(f"resuming {folder.path} at epoch {start_epoch + 1}/{config.epochs}"
              if start_epoch < config.epochs else f"{folder.path} finished all {config.epochs} epochs already")

    test_ds = make_pipeline(test_data.images, test_data.labels, config.batch_size, training=False)
    callbacks = [StopOnNonFiniteLoss(), keras.callbacks.TensorBoard(folder.log_dir, update_freq="epoch"),
                 *extra_callbacks]
    if config.verbose:  # the tool's own epoch count; a live line only on a terminal, plain lines in a log file
        live = config.verbose == 1 and sys.stdout.isatty()
        callbacks.append(EpochProgress(config.epochs, steps_per_epoch, live=live))
    for epoch in range(start_epoch, config.epochs):
        train_ds = make_pipeline(train_data.images, train_data.labels, config.batch_size, training=True,
                                 augment=config.augment, seed=epoch_seed(config.seed, epoch))
        started = time.time()
        try:
            fit = trainer.fit(train_ds, epochs=epoch + 1, initial_epoch=epoch, steps_per_epoch=steps_per_epoch,
                              validation_data=test_ds, callbacks=callbacks, verbose=0,
                              shuffle=False)  # the pipeline already shuffles, seeded per epoch
        except NonFiniteLoss as err:
            raise UsageError(non_finite_message(err, epoch, config, tf.train.latest_checkpoint(resume_dir))) \
                from None
        entry = {"epoch": epoch + 1, "seconds": round(time.time() - started, 3)}
        entry.update({k: float(v[-1]) for k, v in fit.history.items()})
        entry["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        history.append(entry)
        epoch_counter.assign(epoch + 1)
        manager.save(checkpoint_number=epoch + 1)
        folder.write_history(history)

    return finish(config, folder, trainer, test_ds, history, test_data.class_names)


def finish(config, folder, trainer, test_ds, history, class_names):
    """Clean test accuracy, `.keras` + SavedModel export, results.json."""
    metrics = trainer.evaluate(test_ds, verbose=0, return_dict=True)
    results = {
        "run_name": config.run_name,
        "epochs_trained": len(history),
        "test": {k: float(v) for k, v in metrics.items()},
        "num_parameters": int(trainer.network.count_params()),
    }
    print(f"test accuracy {results['test']['accuracy']:.4f}  loss {results['test']['loss']:.4f}")
    if config.export:
        results.update(_export(config, folder, trainer.network, len(history), class_names))
    folder.write_results(results)
    return results


def _export(config, folder, network, epochs_trained, class_names):
    """Writes model.keras, class_names.json and a new SavedModel version (none when a finished run is rerun)."""
    base = export_base(config)
    ownership.claim(base, export_owner(config), EXPORT_WAY_OUT, overwrite=config.overwrite)  # checked at the start
    keras_path = save_keras(network, os.path.join(base, export.KERAS_FILE))
    write_json(os.path.join(base, export.CLASS_NAMES_FILE), list(class_names))
    previous = read_json(os.path.join(folder.path, folder.RESULTS), default={})
    if previous.get("epochs_trained") == epochs_trained and os.path.isdir(previous.get("saved_model", "")):
        saved_model = previous["saved_model"]
    else:
        saved_model = export.export_saved_model(network, base)
    print(f"exported SavedModel {saved_model} and {keras_path}")
    return {"keras_model": keras_path, "saved_model": saved_model}
