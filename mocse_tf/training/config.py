"""The training configuration: every hyperparameter in one visible place, checked before any work starts.
bin/train's and bin/tune's absl flags are generated from its fields (mocse_tf.config_flags)."""

import dataclasses
import math

from mocse_tf import config_flags
from mocse_tf.config_flags import setting
from mocse_tf.errors import UsageError, check_choice

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class TrainConfig:
    """Defaults are the usual CIFAR PreAct-ResNet-18 recipe of PyTorch (torch.optim.SGD 0.1, momentum 0.9, coupled
    weight decay 5e-4, batch 128, cosine per step, 200 epochs)."""

    arch: str = setting("mocse", "string", "Architecture: preact_resnet18 or mocse.")
    dataset: str = setting("synthetic", "string", "Data set: synthetic (built-in, offline), cifar10 (tfds), "
                           "cifar10_local (a cifar-10-batches-py folder, see --local_dir) or cifar100 (tfds).")
    data_dir: str | None = setting(None, "string", "tfds data folder holding a prepared cifar10/cifar100 (default: "
                                   "tfds' own).")
    local_dir: str | None = setting(None, "string", "Path of a cifar-10-batches-py folder for "
                                    "--dataset=cifar10_local.")
    num_train_examples: int = setting(0, "integer", "Use only the first N training images (0 = all).")
    num_test_examples: int = setting(0, "integer", "Use only the first N test images (0 = all).")
    width: int | None = setting(None, "integer", "Network width: PreAct-ResNet-18 base width (default 64) or the "
                                "width of each MoCSE expert (default 16; 64 = each expert a full PreAct-ResNet-18).")
    aggregate: str = setting("margin", "string", "MoCSE aggregator: margin (z_true - z_false, default), true_logit, "
                             "true_log_prob, true_prob.")
    bce_weight: float = setting(1.0, "float", "Weight of the experts' one-vs-rest BCE added to the class CE (MoCSE "
                                "only).")
    augment: str = setting("standard", "string", "Training augmentation: standard (pad 4 + crop + flip), augmented "
                           "(the paper's 'CIFAR-10 Augmented' policy, see README) or none.")
    epochs: int = setting(200, "integer", "Number of epochs.")
    batch_size: int = setting(128, "integer", "Global batch size (split across replicas).")
    learning_rate: float = setting(0.1, "float", "Peak SGD learning rate.")
    lr_schedule: str = setting("cosine", "string", "Learning-rate schedule over all steps: cosine, multistep (x0.1 "
                               "at 50% and 75%) or onecycle.")
    momentum: float = setting(0.9, "float", "SGD momentum.")
    nesterov: bool = setting(False, "bool", "Use Nesterov momentum.")
    weight_decay: float = setting(5e-4, "float", "SGD weight decay (0 disables); by default torch.optim.SGD's "
                                  "coupled L2 (wd * w added to the gradient before momentum), see "
                                  "--weight_decay_mode.")
    weight_decay_mode: str = setting("coupled", "string", "coupled (default: torch.optim.SGD's rule, the PyTorch "
                                     "CIFAR recipes) or decoupled (Keras' SGD: w -= lr * wd * w after the step, "
                                     "about 10x weaker at momentum 0.9).")
    seed: int = setting(0, "integer", "Random seed: data order, augmentation, initialisation, attacks.")
    precision: str = setting("float32", "string", "Keras dtype policy: float32, mixed_float16 or mixed_bfloat16 "
                             "(GPUs).")
    jit_compile: bool = setting(False, "bool", "Compile the train step with XLA (faster on GPUs, slower on this "
                                "CPU).")
    steps_per_epoch: int = setting(0, "integer", "Cap on steps per epoch for smoke runs (0 = full pass over the "
                                   "data).")
    adv: str = setting("none", "string", "Adversarial training: none, pgd (Madry), trades or fgsm_rs (fast FGSM, "
                       "random start).")
    adv_eps: float = setting(8.0 / 255.0, "float", "Adversarial L-inf radius in [0, 1] pixel units (8/255 = 0.0314).")
    adv_step_size: float = setting(2.0 / 255.0, "float", "PGD / TRADES step in [0, 1] pixel units (2/255 = 0.00784); "
                                   "fgsm_rs always uses 1.25 x --adv_eps.")
    adv_steps: int = setting(10, "integer", "PGD / TRADES inner steps (not used by fgsm_rs).")
    trades_beta: float = setting(6.0, "float", "TRADES trade-off beta.")
    strategy: str = setting("default", "string", "tf.distribute strategy: default (one device), mirrored (all local "
                            "GPUs), multi_worker (the hosts in TF_CONFIG; run the same command on each) or tpu "
                            "(Cloud TPU VM or TPU_NAME). --batch_size stays the global batch.")
    run_name: str = setting("", "string", "Run name (default: <arch>_<dataset>[_<augment>][_<adv>]); names the "
                            "export.")
    output_dir: str = setting("", "string", "Run folder for checkpoints, logs and history (default: "
                              "runs/<run_name>); rerunning with the same flags resumes it.")
    export_dir: str = setting("saved_models", "string", "Base folder of exports: <export_dir>/<run_name>/<version>/ "
                              "and model.keras.")
    export: bool = setting(True, "bool", "Export a SavedModel and a .keras file when training ends (--noexport skips "
                           "it).")
    verbose: int = setting(1, "integer", "Progress: 0 silent, 1 a live line per epoch on a terminal (one plain line "
                           "per epoch when the output is a file or a pipe), 2 one line per epoch.")
    overwrite: bool = setting(False, "bool", "Replace what another run (other flags) left in --output_dir and in "
                              "<export_dir>/<run_name>/ instead of stopping (their old contents are deleted).")

    # Fields that only change where or how loudly a run reports; a rerun may change them freely.
    COSMETIC = ("verbose", "export", "export_dir", "output_dir", "run_name", "data_dir", "local_dir", "overwrite",
                "strategy")  # global batch semantics: a run may resume on another number of devices

    def resolved(self):
        """A copy with run_name and output_dir filled in from the other fields when empty."""
        config = dataclasses.replace(self)
        if not config.run_name:
            parts = [config.arch, config.dataset]
            if config.augment != "standard":
                parts.append(config.augment)
            if config.adv != "none":
                parts.append(config.adv)
            config.run_name = "_".join(parts)
        if not config.output_dir:
            config.output_dir = f"runs/{config.run_name}"
        return config

    def validate(self):
        """Raises UsageError naming the first bad value and the fix. Each name is checked by the module that
        defines its choices (the same check its builder makes), and the training attack is made as the trainer
        will make it, here before any work starts."""
        from mocse_tf import data, models
        from mocse_tf.training import adversarial, distribute, optimizer, schedules

        models.check_arch(self.arch)
        data.check_dataset(self.dataset)
        data.check_policy(self.augment)
        models.check_aggregate(self.aggregate)
        schedules.check_schedule(self.lr_schedule)
        check_choice("precision", self.precision, PRECISIONS)  # handed to Keras' dtype policy as it is
        distribute.check_strategy(self.strategy)
        optimizer.check_weight_decay_mode(self.weight_decay_mode)
        for field in dataclasses.fields(self):  # NaN passes every comparison below, so it is refused first
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"`{field.name}` must be a finite number, got {value}")
        for field in ("epochs", "batch_size", "adv_steps", "width"):
            value = getattr(self, field)
            if value is not None and value <= 0:  # width None: the architecture's default
                raise UsageError(f"`{field}` must be a positive integer, got {value}")
        for field in ("num_train_examples", "num_test_examples", "steps_per_epoch", "weight_decay", "bce_weight"):
            if getattr(self, field) < 0:
                raise UsageError(f"`{field}` must be >= 0, got {getattr(self, field)}")
        if self.learning_rate <= 0:
            raise UsageError(f"`learning_rate` must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            raise UsageError(f"`momentum` must be in [0, 1), got {self.momentum}")
        if self.dataset == "cifar10_local" and not self.local_dir:
            raise UsageError("`dataset`=cifar10_local needs `local_dir`=PATH (a cifar-10-batches-py folder)")
        if self.adv != "none" and not (0 < self.adv_eps <= 1 and 0 < self.adv_step_size <= 1):
            raise UsageError(f"`adv_eps` and `adv_step_size` are in [0, 1] pixel units (8/255 = 0.0314), got "
                             f"{self.adv_eps} and {self.adv_step_size}")
        adversarial.make_training_attack(self)  # `adv` and the attack the trainer gets, with its own checks
        return self

    def inactive_settings(self, given):
        """The settings among `given` (field names set by the user) that do nothing in this configuration, as
        (field, deciding field, its value) triples: e.g. ("adv_eps", "adv", "none")."""
        return config_flags.inactive_settings(self, given, [
            (("adv_eps", "adv_step_size", "adv_steps", "trades_beta"), "adv", self.adv == "none"),
            (("adv_step_size", "adv_steps"), "adv", self.adv == "fgsm_rs"),
            (("trades_beta",), "adv", self.adv in ("pgd", "fgsm_rs")),
            (("bce_weight", "aggregate"), "arch", self.arch != "mocse"),
            (("local_dir",), "dataset", self.dataset != "cifar10_local"),
            (("data_dir",), "dataset", self.dataset in ("synthetic", "cifar10_local")),
            (("nesterov",), "momentum", self.momentum == 0),
            (("weight_decay_mode",), "weight_decay", self.weight_decay == 0),
        ])

    def identity(self):
        """The fields that define what is trained; two runs with equal identities may share a folder."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in self.COSMETIC}
