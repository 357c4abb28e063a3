"""Adversarial training (`adv`): the attack that makes each step's training examples, and how it sees the network.

`make_training_attack(config)` turns `adv`, `adv_eps`, `adv_step_size`, `adv_steps`, `trades_beta`, `bce_weight`
and `seed` into an `AdversarialTraining`, which `RobustTrainer.train_step` calls on the training device before
recording the weight update. The modes:

  pgd      Madry et al.: the step trains on the final iterate of `adv_steps` projected sign-gradient steps of
           `adv_step_size` from a uniform random start in the L-inf ball of `adv_eps` (default 10 x 2/255 at
           8/255). The attack maximises the loss being trained: class CE, plus `bce_weight` x the experts' BCE
           for MoCSE (objective "mocse_total", plain CE for PreAct-ResNet-18).
  trades   Zhang et al.: `adv_steps` steps of `adv_step_size` maximising KL(p_clean || p_adv) of the class
           softmax from x + 0.001 N(0, 1); the step trains on CE(clean) + `trades_beta` x KL(clean || adv), and for
           MoCSE also `bce_weight` x the experts' BCE on the clean batch (the BCE belongs to MoCSE's natural loss,
           which is TRADES's first term; the robustness term acts on the aggregate class distribution only).
  fgsm_rs  Wong et al.'s fast adversarial training: one step of 1.25 x `adv_eps` (10/255 at 8/255) from a uniform
           random start, on the same objective as pgd. `adv_step_size` and `adv_steps` do not apply: the
           published recipe ties the step to eps, and a 2/255 step would undo the method.

Batch normalisation while the examples are generated follows each method's reference code. pgd and trades: the
network runs in inference mode, normalising with its moving averages, as the TRADES and AutoAttack references do.
Each example's perturbation then depends on that example alone (not on the rest of the batch), generation never
writes the moving averages, and only the outer, training-mode pass on the examples updates them, once per step
(twice for TRADES, which passes the clean and the adversarial batch, as its reference does). fgsm_rs: training
mode, as in fast_adversarial (Wong et al.), whose model stays in train() mode while it makes the perturbation: the
attack normalises with the statistics of the batch it attacks, and its pass also moves the moving averages (so
they move twice per step, as there). `make_training_attack(config, batch_statistics=True|False)` overrides the
mode; an explicit choice normalises as asked and leaves the moving averages to the outer pass. Either way the
weights change only through the outer step's gradient. Under mixed precision the attack computes in float32
(`mocse_tf.attacks.forward`), so its input gradient does not underflow.
"""

import dataclasses

import tensorflow as tf

from mocse_tf import attacks
from mocse_tf.errors import UsageError, check_choice

MODES = ("none", *attacks.TRAINING_KINDS)  # `adv`

# The pixel scale of the networks: they take [0, 255] pixels, the attacks work on [0, 1].
PIXEL_SCALE = 255.0


@dataclasses.dataclass(frozen=True)
class AdversarialTraining:
    """What a train_step needs to train adversarially: the attack, TRADES's beta, the seed and the BN mode."""

    attack: attacks.Attack
    trades_beta: float = 6.0
    seed: int = 0
    batch_statistics: bool = False
    update_bn_statistics: bool = False  # the generation pass moves the BN moving averages (fgsm_rs's reference)

    def __post_init__(self):
        if not isinstance(self.attack, attacks.Attack) or self.attack.kind not in attacks.TRAINING_KINDS:
            raise UsageError(f"adversarial training needs an attack of kind {', '.join(attacks.TRAINING_KINDS)} "
                             f"(mocse_tf.attacks.make_training_attack), got {self.attack!r}")
        if isinstance(self.trades_beta, bool) or not isinstance(self.trades_beta, (int, float)) \
                or self.trades_beta < 0:
            raise UsageError(f"`trades_beta` must be >= 0, got {self.trades_beta!r}")

    @property
    def is_trades(self):
        return self.attack.kind == "trades"

    def step_seed(self, step):
        """The stateless seed of training step `step`: a new start every step, a different one on each replica,
        and the same one again when a run resumes (the step counter is checkpointed with the optimizer)."""
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        replica_context = tf.distribute.get_replica_context()
        if replica_context is not None and replica_context.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, replica_context.replica_id_in_sync_group)
        return seed

    def perturb(self, network, pixels, labels, step):
        """Adversarial pixels (float32 in [0, 255], no gradient) for the batch `pixels` [B, 32, 32, 3] in [0, 255].

        Call it before the GradientTape that records the weight update: the attack needs gradients with respect
        to the input only, and a tape around it would record its whole loop for nothing.
        """
        forward = attacks.model_forward(network, training=self.batch_statistics,
                                        update_bn_statistics=self.update_bn_statistics, pixel_scale=PIXEL_SCALE)
        x01 = tf.cast(pixels, tf.float32) / PIXEL_SCALE
        adversarial = self.attack.generate(forward, x01, labels, seed=self.step_seed(step))
        return adversarial * PIXEL_SCALE


def check_mode(adv):
    return check_choice("adv", adv, MODES)


def make_training_attack(config, *, batch_statistics=None, unroll=False):
    """The `AdversarialTraining` of `config.adv`, or None for `adv`=none (see the module docstring).

    batch_statistics: batch normalisation mode during generation (None: the method's reference mode, training mode
    with moving-average updates for fgsm_rs, inference mode otherwise; False: inference mode; the two cost the same
    within noise, PGD-10 6.8x vs 6.7x the plain step back to back in bench/adversarial.py on this CPU). unroll: attack
    steps as a Python loop instead of a tf.while_loop; the two ran at the same speed within noise (PGD-10 7.1x
    looped vs 7.0x unrolled), and the loop traces faster (20 s vs 29 s), so it is the default.
    """
    if check_mode(config.adv) == "none":
        return None
    settings = {"eps": float(config.adv_eps), "unroll": unroll}
    if config.adv == "fgsm_rs":
        pass  # one step of 1.25 * eps from a random start: the attack kind's own defaults
    else:
        settings.update(steps=int(config.adv_steps), step_size=float(config.adv_step_size))
    if config.adv != "trades":
        settings.update(objective="mocse_total", bce_weight=float(config.bce_weight))
    attack = attacks.make_training_attack(config.adv, **settings)
    reference_mode = batch_statistics is None and config.adv == "fgsm_rs"
    return AdversarialTraining(attack, trades_beta=float(config.trades_beta), seed=int(config.seed),
                               batch_statistics=bool(batch_statistics) or reference_mode,
                               update_bn_statistics=reference_mode)
