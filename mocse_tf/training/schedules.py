"""Per-step learning-rate schedules: cosine (the default recipe), multistep and one-cycle."""

import keras
from keras import ops

from mocse_tf.errors import check_choice

LR_SCHEDULES = ("cosine", "multistep", "onecycle")


@keras.saving.register_keras_serializable(package="mocse_tf")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from max_lr / 25 to max_lr over the first `warmup_fraction` of steps, then linear to 0."""

    def __init__(self, max_lr, total_steps, warmup_fraction=0.25):
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = max(1.0, self.warmup_fraction * self.total_steps)
        start = self.max_lr / 25.0
        rising = start + (self.max_lr - start) * step / warmup
        falling = self.max_lr * ops.maximum(0.0, (self.total_steps - step) / max(1.0, self.total_steps - warmup))
        return ops.where(step < warmup, rising, falling)

    def get_config(self):
        return {"max_lr": self.max_lr, "total_steps": self.total_steps, "warmup_fraction": self.warmup_fraction}


def check_schedule(name):
    return check_choice("lr_schedule", name, LR_SCHEDULES)


def make_schedule(name, learning_rate, total_steps):
    """The schedule `name` over `total_steps` optimizer steps; multistep divides by 10 at 50% and 75%."""
    check_schedule(name)
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, total_steps))
    if name == "multistep":
        boundaries = [max(1, total_steps // 2), max(2, (3 * total_steps) // 4)]
        values = [learning_rate, learning_rate * 0.1, learning_rate * 0.01]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    return OneCycle(learning_rate, total_steps)
