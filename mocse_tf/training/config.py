"""The training configuration: every hyperparameter in one visible place, checked before any work starts."""

import dataclasses
import json
import math

from mocse_tf.errors import UsageError, check_choice

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class TrainConfig:
    """Defaults are the usual CIFAR PreAct-ResNet-18 recipe of PyTorch (torch.optim.SGD 0.1, momentum 0.9, coupled
    weight decay 5e-4, batch 128, cosine per step, 200 epochs)."""

    arch: str = "mocse"
    dataset: str = "synthetic"
    data_dir: str | None = None
    local_dir: str | None = None
    num_train_examples: int = 0  # 0 = all
    num_test_examples: int = 0
    width: int | None = None  # None = the architecture's default (64; 16 per MoCSE expert)
    aggregate: str = "margin"
    bce_weight: float = 1.0
    augment: str = "standard"
    epochs: int = 200
    batch_size: int = 128
    learning_rate: float = 0.1
    lr_schedule: str = "cosine"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4  # torch.optim.SGD's coupled L2 (g += wd * w before momentum) unless decoupled
    weight_decay_mode: str = "coupled"
    seed: int = 0
    precision: str = "float32"
    jit_compile: bool = False
    steps_per_epoch: int = 0  # 0 = a full pass over the training set; > 0 caps each epoch (smoke runs)
    adv: str = "none"
    adv_eps: float = 8.0 / 255.0
    adv_step_size: float = 2.0 / 255.0
    adv_steps: int = 10
    trades_beta: float = 6.0
    strategy: str = "default"
    run_name: str = ""
    output_dir: str = ""
    export_dir: str = "saved_models"
    export: bool = True  # False: no .keras / SavedModel at the end (searches, tests)
    verbose: int = 1
    overwrite: bool = False  # True: a run or export folder holding another run is emptied and reused

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
        """Raises UsageError naming the first bad value and the fix."""
        from mocse_tf.attacks import TRAINING_KINDS
        from mocse_tf.data import AUGMENT_POLICIES, DATASETS
        from mocse_tf.models import AGGREGATORS, ARCHS
        from mocse_tf.training.distribute import STRATEGIES
        from mocse_tf.training.optimizer import WEIGHT_DECAY_MODES
        from mocse_tf.training.schedules import LR_SCHEDULES

        choices = {
            "arch": ARCHS, "dataset": DATASETS, "augment": AUGMENT_POLICIES, "aggregate": tuple(AGGREGATORS),
            "lr_schedule": LR_SCHEDULES, "precision": PRECISIONS, "adv": ("none", *TRAINING_KINDS),
            "strategy": STRATEGIES,
            "weight_decay_mode": WEIGHT_DECAY_MODES,
        }
        for field, allowed in choices.items():
            check_choice(field, getattr(self, field), allowed)
        for field in dataclasses.fields(self):  # NaN passes every comparison below, so it is refused first
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"--{field.name} must be a finite number, got {value}")
        for field in ("epochs", "batch_size", "adv_steps"):
            if getattr(self, field) <= 0:
                raise UsageError(f"--{field} must be a positive integer, got {getattr(self, field)}")
        if self.width is not None and self.width <= 0:
            raise UsageError(f"--width must be a positive integer, got {self.width}")
        for field in ("num_train_examples", "num_test_examples", "steps_per_epoch", "weight_decay", "bce_weight"):
            if getattr(self, field) < 0:
                raise UsageError(f"--{field} must be >= 0, got {getattr(self, field)}")
        if self.learning_rate <= 0:
            raise UsageError(f"--learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            raise UsageError(f"--momentum must be in [0, 1), got {self.momentum}")
        if self.dataset == "cifar10_local" and not self.local_dir:
            raise UsageError("--dataset=cifar10_local needs --local_dir=PATH (a cifar-10-batches-py folder)")
        if self.adv != "none" and not (0 < self.adv_eps <= 1 and 0 < self.adv_step_size <= 1):
            raise UsageError(f"--adv_eps and --adv_step_size are in [0, 1] pixel units (8/255 = 0.0314), got "
                             f"{self.adv_eps} and {self.adv_step_size}")
        if self.adv == "trades" and self.trades_beta < 0:
            raise UsageError(f"--trades_beta must be >= 0, got {self.trades_beta}")
        return self

    def inactive_settings(self, given):
        """The settings among `given` (field names set by the user) that do nothing in this configuration, as
        (field, deciding field, its value) triples: e.g. ("adv_eps", "adv", "none")."""
        inactive = []

        def unused(fields, decider, condition):
            if condition:
                inactive.extend((f, decider, getattr(self, decider)) for f in fields if f in given)

        unused(("adv_eps", "adv_step_size", "adv_steps", "trades_beta"), "adv", self.adv == "none")
        unused(("adv_step_size", "adv_steps"), "adv", self.adv == "fgsm_rs")
        unused(("trades_beta",), "adv", self.adv in ("pgd", "fgsm_rs"))
        unused(("bce_weight", "aggregate"), "arch", self.arch != "mocse")
        unused(("local_dir",), "dataset", self.dataset != "cifar10_local")
        unused(("data_dir",), "dataset", self.dataset in ("synthetic", "cifar10_local"))
        unused(("nesterov",), "momentum", self.momentum == 0)
        unused(("weight_decay_mode",), "weight_decay", self.weight_decay == 0)
        return inactive

    def identity(self):
        """The fields that define what is trained; two runs with equal identities may share a folder."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in self.COSMETIC}

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
