"""absl flags for training, named like the TrainConfig fields they fill (shared by bin/train and bin/tune)."""

import dataclasses

from absl import flags

from mocse_tf.training.config import TrainConfig

_DEFAULTS = TrainConfig()

# (name, kind, help); the default always comes from TrainConfig so there is one source of truth.
_FLAGS = (
    ("arch", "string", "Architecture: preact_resnet18 or mocse."),
    ("dataset", "string", "Data set: synthetic (built-in, offline), cifar10 (tfds), cifar10_local "
                          "(a cifar-10-batches-py folder, see --local_dir) or cifar100 (tfds)."),
    ("data_dir", "string", "tfds data folder holding a prepared cifar10/cifar100 (default: tfds' own)."),
    ("local_dir", "string", "Path of a cifar-10-batches-py folder for --dataset=cifar10_local."),
    ("num_train_examples", "integer", "Use only the first N training images (0 = all)."),
    ("num_test_examples", "integer", "Use only the first N test images (0 = all)."),
    ("width", "integer", "Network width: PreAct-ResNet-18 base width (default 64) or the width of each "
                         "MoCSE expert (default 16; 64 = each expert a full PreAct-ResNet-18)."),
    ("aggregate", "string", "MoCSE aggregator: margin (z_true - z_false, default), true_logit, true_log_prob, "
                            "true_prob."),
    ("bce_weight", "float", "Weight of the experts' one-vs-rest BCE added to the class CE (MoCSE only)."),
    ("augment", "string", "Training augmentation: standard (pad 4 + crop + flip), augmented (the paper's "
                          "'CIFAR-10 Augmented' policy, see README) or none."),
    ("epochs", "integer", "Number of epochs."),
    ("batch_size", "integer", "Global batch size (split across replicas)."),
    ("learning_rate", "float", "Peak SGD learning rate."),
    ("lr_schedule", "string", "Learning-rate schedule over all steps: cosine, multistep (x0.1 at 50% and 75%) "
                              "or onecycle."),
    ("momentum", "float", "SGD momentum."),
    ("nesterov", "bool", "Use Nesterov momentum."),
    ("weight_decay", "float", "SGD weight decay (0 disables); by default torch.optim.SGD's coupled L2 "
                              "(wd * w added to the gradient before momentum), see --weight_decay_mode."),
    ("weight_decay_mode", "string", "coupled (default: torch.optim.SGD's rule, the PyTorch CIFAR recipes) or "
                                    "decoupled (Keras' SGD: w -= lr * wd * w after the step, about 10x weaker "
                                    "at momentum 0.9)."),
    ("seed", "integer", "Random seed: data order, augmentation, initialisation, attacks."),
    ("precision", "string", "Keras dtype policy: float32, mixed_float16 or mixed_bfloat16 (GPUs)."),
    ("jit_compile", "bool", "Compile the train step with XLA (faster on GPUs, slower on this CPU)."),
    ("steps_per_epoch", "integer", "Cap on steps per epoch for smoke runs (0 = full pass over the data)."),
    ("adv", "string", "Adversarial training: none, pgd (Madry), trades or fgsm_rs (fast FGSM, random start)."),
    ("adv_eps", "float", "Adversarial L-inf radius in [0, 1] pixel units (8/255 = 0.0314)."),
    ("adv_step_size", "float", "PGD / TRADES step in [0, 1] pixel units (2/255 = 0.00784); fgsm_rs always "
                              "uses 1.25 x --adv_eps."),
    ("adv_steps", "integer", "PGD / TRADES inner steps (not used by fgsm_rs)."),
    ("trades_beta", "float", "TRADES trade-off beta."),
    ("strategy", "string", "tf.distribute strategy: default (one device), mirrored (all local GPUs), multi_worker "
                           "(the hosts in TF_CONFIG; run the same command on each) or tpu (Cloud TPU VM or "
                           "TPU_NAME). --batch_size stays the global batch."),
    ("run_name", "string", "Run name (default: <arch>_<dataset>[_<augment>][_<adv>]); names the export."),
    ("output_dir", "string", "Run folder for checkpoints, logs and history (default: runs/<run_name>); "
                             "rerunning with the same flags resumes it."),
    ("export_dir", "string", "Base folder of exports: <export_dir>/<run_name>/<version>/ and model.keras."),
    ("overwrite", "bool", "Replace what another run (other flags) left in --output_dir and in "
                          "<export_dir>/<run_name>/ instead of stopping (their old contents are deleted)."),
    ("export", "bool", "Export a SavedModel and a .keras file when training ends (--noexport skips it)."),
    ("verbose", "integer", "Progress: 0 silent, 1 a live line per epoch on a terminal (one plain line per epoch "
                           "when the output is a file or a pipe), 2 one line per epoch."),
)


def define_train_flags():
    """Defines every training flag once (idempotent)."""
    for name, kind, help_text in _FLAGS:
        if name in flags.FLAGS:
            continue
        default = getattr(_DEFAULTS, name)
        getattr(flags, f"DEFINE_{kind}")(name, default, help_text)


def config_from_flags(flag_values=None):
    """A TrainConfig holding the parsed flag values."""
    flag_values = flag_values or flags.FLAGS
    values = {field.name: flag_values[field.name].value for field in dataclasses.fields(TrainConfig)
              if field.name in flag_values}
    return TrainConfig(**values)

