"""Hyperparameter search with keras-tuner (behind `bin/tune`): one trial = one short training run of the trainer.

The objective is accuracy on a validation split carved from the training set (never the test set): clean, or
averaged over the 4 EXTRA corruptions (speckle_noise, gaussian_blur, spatter, saturate), which are held out
from the 15-corruption benchmark. The search lives in a folder and resumes there; the best hyperparameters
are written as a flagfile for `bin/train --flagfile=...`.
"""

import dataclasses
import datetime
import os
import sys

import keras
import keras_tuner
import numpy as np

from mocse_tf import corruptions, ownership
from mocse_tf.config_flags import setting
from mocse_tf.data import load_arrays, make_pipeline
from mocse_tf.errors import UsageError, check_choice
from mocse_tf.files import write_json, write_text
from mocse_tf.evaluation import accuracy
from mocse_tf.loading import Classifier
from mocse_tf.training import run
from mocse_tf.training.config import TrainConfig

TUNERS = ("random", "hyperband", "bayesian")
OBJECTIVES = {"clean": "val_clean_accuracy", "extra_corruptions": "val_extra_corruptions_accuracy"}
DEFAULT_WIDTH_CHOICES = {"mocse": (8, 16, 32), "preact_resnet18": (16, 32, 64)}
# Flags a flagfile never carries: where a run writes, how loudly, and how it is spread over devices.
_NOT_IN_FLAGFILE = ("output_dir", "export_dir", "run_name", "verbose", "strategy", "overwrite")
_SEARCH_TEXTS = {"different": "`tune_dir` {folder} holds a different search ({differences}); {way_out}",
                 "unrecorded": "`tune_dir` {folder} holds files ({files}) and no search_config.json; use a new "
                               "`tune_dir` or empty that folder"}


@dataclasses.dataclass
class SearchSettings:
    """What bin/tune adds to the training settings (which fix a setting for every trial)."""

    tuner: str = setting("random", "string", "Search algorithm: random, hyperband or bayesian.")
    max_trials: int = setting(10, "integer", "Number of hyperparameter sets to train and score (caps Hyperband's "
                              "brackets too).")
    objective: str = setting("extra_corruptions", "string", "What to maximise on the validation split: "
                             "extra_corruptions (mean accuracy over speckle_noise, gaussian_blur, spatter, saturate "
                             "at --corruption_severities; never the 15 benchmark corruptions) or clean.")
    num_validation_examples: int = setting(0, "integer", "Training images held out for scoring trials (0 = a "
                                           "tenth of the training set).")
    corruption_severities: tuple = setting((1, 2, 3, 4, 5), "list", "Severities of the EXTRA corruptions in the "
                                           "objective.")
    width_choices: tuple = setting((), "list", "Widths to try (per MoCSE expert, or the PreAct-ResNet-18 base "
                                   "width); default 8,16,32 for mocse and 16,32,64 for preact_resnet18.")
    tune_dir: str = setting("", "string", "Search folder (default tuning/<run_name>); rerunning the same command "
                            "there resumes the search.")
    best_flagfile: str = setting("", "string", "Where to write the best hyperparameters as a bin/train flagfile "
                                 "(default <tune_dir>/best.flags).")

    def validate(self, config):
        """A copy with the lists as integers, after checking every setting against the training `config`."""
        check_choice("tuner", self.tuner, TUNERS)
        check_choice("objective", self.objective, tuple(OBJECTIVES))
        settings = dataclasses.replace(self, corruption_severities=self._integers("corruption_severities"),
                                       width_choices=self._integers("width_choices"))
        if settings.max_trials <= 0:
            raise UsageError(f"`max_trials` must be a positive integer, got {settings.max_trials}")
        if settings.num_validation_examples < 0:
            raise UsageError(f"`num_validation_examples` must be >= 0, got {settings.num_validation_examples}")
        if not settings.corruption_severities or not set(settings.corruption_severities) <= set(corruptions.SEVERITIES):
            raise UsageError(f"`corruption_severities` must list severities from 1 to 5, got "
                             f"{list(settings.corruption_severities)}")
        if any(w <= 0 for w in settings.width_choices):
            raise UsageError(f"`width_choices` must be positive integers, got {list(settings.width_choices)}")
        if config.strategy not in ("default", "mirrored"):
            raise UsageError(f"bin/tune runs trials in one process: use `strategy`=default or mirrored, not "
                             f"{config.strategy!r}")
        return settings

    def _integers(self, name):
        values = getattr(self, name)
        try:
            return tuple(int(str(v)) for v in values)
        except ValueError:
            raise UsageError(f"`{name}` must be a comma-separated list of integers, got "
                             f"{','.join(map(str, values))}") from None


# --- data ---------------------------------------------------------------------------------------------------

def split_validation(images, labels, num_validation, seed):
    """(train_images, train_labels, val_images, val_labels): a seeded random held-out subset of the training set."""
    count = num_validation or max(1, len(labels) // 10)
    if count >= len(labels):
        raise UsageError(f"`num_validation_examples`={count} leaves no training images out of {len(labels)}; "
                         f"lower it or raise `num_train_examples`")
    order = np.random.default_rng(seed).permutation(len(labels))
    held_out, kept = np.sort(order[:count]), np.sort(order[count:])
    return images[kept], labels[kept], images[held_out], labels[held_out]


def validation_sets(images, labels, objective, severities, seed):
    """{name: (images, labels)} scored each epoch: the clean split and, for extra_corruptions, every corrupted copy."""
    sets = {"clean": (images, labels)}
    if objective != "extra_corruptions":
        return sets
    for index, name in enumerate(corruptions.EXTRA):
        for severity in severities:
            corrupted = corruptions.corrupt(images, name, severity, seed=seed * 1000 + index * 10 + severity)
            sets[f"{name}_{severity}"] = (np.asarray(corrupted), labels)
    return sets


class ValidationScores(keras.callbacks.Callback):
    """Adds val_clean_accuracy (and val_extra_corruptions_accuracy) to each epoch's logs, before the tuner's
    callbacks read them."""

    def __init__(self, sets, batch_size=256):
        super().__init__()
        # The in-order clean pipeline of each set, built once per trial and cached after its first epoch.
        self.batches = {name: make_pipeline(images, labels, batch_size, training=False)
                        for name, (images, labels) in sets.items()}
        self._counter = None

    def on_epoch_end(self, epoch, logs=None):
        if self._counter is None:
            self._counter = accuracy.correct_counter(Classifier.from_network(self.model.network))
        scores = {name: accuracy.accuracy(self._counter, batches) for name, batches in self.batches.items()}
        logs["val_clean_accuracy"] = scores.pop("clean")
        if scores:
            logs["val_extra_corruptions_accuracy"] = float(np.mean(list(scores.values())))


# --- the search space ---------------------------------------------------------------------------------------

def trial_config(base, hp, width_choices):
    """The TrainConfig of one trial: `base` with the searched hyperparameters drawn from `hp`."""
    from mocse_tf.models import AGGREGATORS

    values = {
        "learning_rate": hp.Float("learning_rate", 0.01, 0.4, sampling="log"),
        "weight_decay": hp.Float("weight_decay", 1e-5, 2e-3, sampling="log"),
        "width": hp.Choice("width", list(width_choices)),
    }
    if base.arch == "mocse":
        values["bce_weight"] = hp.Float("bce_weight", 0.0, 2.0)
        values["aggregate"] = hp.Choice("aggregate", list(AGGREGATORS))
    if base.adv != "none":
        values["adv_step_size"] = hp.Float("adv_step_size", base.adv_eps / 10, base.adv_eps / 2, sampling="log")
    return dataclasses.replace(base, **values).validate()


class TrainerHyperModel(keras_tuner.HyperModel):
    """Builds the trainer for a trial and trains it on the carved training split."""

    def __init__(self, base, width_choices, train_arrays, num_classes, steps_per_epoch, sets):
        super().__init__(name="trainer")
        self.base = base
        self.width_choices = width_choices
        self.train_arrays = train_arrays
        self.num_classes = num_classes
        self.steps_per_epoch = steps_per_epoch
        self.sets = sets

    def build(self, hp):
        config = trial_config(self.base, hp, self.width_choices)
        keras.utils.set_random_seed(config.seed)  # every trial starts from the same seed: a fair comparison
        trainer = run.build_trainer(config, self.num_classes)
        optimizer = run.make_optimizer(config, self.steps_per_epoch)
        trainer.compile(optimizer=optimizer, jit_compile=config.jit_compile)
        optimizer.build(trainer.network.trainable_variables)
        return trainer

    def fit(self, hp, model, *args, callbacks=(), epochs=None, initial_epoch=0, **kwargs):
        config = trial_config(self.base, hp, self.width_choices)
        images, labels = self.train_arrays
        # One pipeline for all of the trial's epochs: it reshuffles (seeded) at each pass.
        train_ds = make_pipeline(images, labels, config.batch_size, training=True, augment=config.augment,
                                 seed=config.seed)
        return model.fit(train_ds, epochs=epochs or config.epochs, initial_epoch=initial_epoch,
                         steps_per_epoch=self.steps_per_epoch, shuffle=False,
                         verbose=config.verbose if sys.stdout.isatty() else min(config.verbose, 2),
                         callbacks=[ValidationScores(self.sets), *callbacks])


def make_tuner(settings, hypermodel, config, directory, project_name):
    """The keras-tuner Tuner; overwrite=False makes it reload and continue a search found in `directory`."""
    common = {
        "objective": keras_tuner.Objective(OBJECTIVES[settings.objective], direction="max"),
        "directory": directory, "project_name": project_name, "overwrite": False, "seed": config.seed,
    }
    if config.strategy == "mirrored":
        from mocse_tf.training import distribute

        common["distribution_strategy"] = distribute.make_strategy("mirrored")
    if settings.tuner == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=settings.max_trials, **common)
    if settings.tuner == "bayesian":  # setup.py installs keras-tuner[bayesian], so scikit-learn is there
        return keras_tuner.BayesianOptimization(hypermodel, max_trials=settings.max_trials, **common)
    tuner = keras_tuner.Hyperband(hypermodel, max_epochs=config.epochs, factor=3, hyperband_iterations=1, **common)
    tuner.oracle.max_trials = settings.max_trials  # Hyperband has no such argument; its oracle honours the cap
    return tuner


# --- results ------------------------------------------------------------------------------------------------

def flagfile_lines(config, header, tuned_names):
    """Lines of an absl flagfile that make bin/train train `config` (on the whole training set): the searched
    flags, the architecture, data set and epochs, and every other flag that differs from its default."""
    lines = [f"# {line}" for line in header]
    defaults = dataclasses.asdict(TrainConfig())
    always = {"arch", "dataset", "epochs", *tuned_names}
    for name, value in dataclasses.asdict(config).items():
        if name in _NOT_IN_FLAGFILE or value is None or (value == defaults[name] and name not in always):
            continue
        if isinstance(value, bool):
            lines.append(f"--{name}" if value else f"--no{name}")
        else:
            lines.append(f"--{name}={value!r}" if isinstance(value, float) else f"--{name}={value}")
    return lines


def tune(config, settings):
    """Runs (or resumes) a search; writes the best flagfile and best_hyperparameters.json; returns their paths."""
    config = config.resolved().validate()
    settings = settings.validate(config)
    width_choices = settings.width_choices or DEFAULT_WIDTH_CHOICES[config.arch]
    directory = settings.tune_dir or os.path.join("tuning", config.run_name)
    best_flagfile = settings.best_flagfile or os.path.join(directory, "best.flags")

    data = load_arrays(config.dataset, "train", data_dir=config.data_dir, local_dir=config.local_dir,
                       seed=config.seed, num_examples=config.num_train_examples or None)
    train_images, train_labels, val_images, val_labels = split_validation(
        data.images, data.labels, settings.num_validation_examples, config.seed)
    sets = validation_sets(val_images, val_labels, settings.objective, settings.corruption_severities, config.seed)
    steps_per_epoch = run._steps_per_epoch(config, len(train_labels))

    identity = {"trial_config": config.identity(), "tuner": settings.tuner, "objective": settings.objective,
                "num_validation_examples": len(val_labels), "width_choices": list(width_choices),
                "corruption_severities": list(settings.corruption_severities)}
    # Like bin/train's run folders: the same search resumes, a search of something else is refused.
    if ownership.claim(directory, identity, "use a new `tune_dir`, or rerun with the same flags to resume",
                       file="search_config.json", keys=identity, texts=_SEARCH_TEXTS):
        print(f"resuming the search in {directory}")

    hypermodel = TrainerHyperModel(config, width_choices, (train_images, train_labels), data.num_classes,
                                   steps_per_epoch, sets)
    tuner = make_tuner(settings, hypermodel, config, directory, f"{settings.tuner}_search")
    tuner.search(verbose=config.verbose)

    trials = [t for t in tuner.oracle.get_best_trials(num_trials=settings.max_trials) if t.score is not None]
    # Best score first; ties (common on small validation splits) go to the earliest trial, so a resumed search
    # names the same best.
    trials.sort(key=lambda t: (-t.score, len(str(t.trial_id)), str(t.trial_id)))
    if not trials:
        raise UsageError(f"no trial of the search in {directory} finished with a score; see the errors above")
    best = trials[0]
    best_config = trial_config(config, best.hyperparameters, width_choices)
    objective = OBJECTIVES[settings.objective]
    header = [f"Best of {len(trials)} trials by {objective} = {best.score:.4f} (bin/tune --tuner={settings.tuner}, "
              f"{datetime.date.today().isoformat()}).",
              f"Trials trained on {len(train_labels)} images and were scored on {len(val_labels)} held-out "
              f"training images; bin/train uses the whole training set."]
    tuned_names = [k for k in best.hyperparameters.values if not k.startswith("tuner/")]
    write_text(best_flagfile, "\n".join(flagfile_lines(best_config, header, tuned_names)) + "\n")
    summary_path = os.path.join(directory, "best_hyperparameters.json")
    write_json(summary_path, {
        "objective": objective, "score": best.score, "trial_id": best.trial_id,
        "hyperparameters": {k: best.hyperparameters.values[k] for k in tuned_names},
        "trials": [{"trial_id": t.trial_id, "score": t.score} for t in trials]})
    print(f"best {objective} {best.score:.4f} (trial {best.trial_id}); train it with: "
          f"bin/train --flagfile={best_flagfile}")
    return {"flagfile": best_flagfile, "summary": summary_path, "score": best.score}
