"""The attack dispatcher: `Attack` holds one attack's settings for training and evaluation, `make_attack` fills in
each kind's defaults, and `Attack.generate` calls FGSM, PGD, APGD, APGD-T or TRADES. A train_step calls
`attack.generate(forward, x01, labels, seed)`, an evaluator the same."""

import dataclasses

from mocse_tf.attacks import geometry, objectives, selection
from mocse_tf.attacks.apgd import NUM_TARGETS, apgd, apgd_targeted
from mocse_tf.attacks.checks import check_count, check_number
from mocse_tf.attacks.pgd import pgd
from mocse_tf.attacks.trades import trades_adversary
from mocse_tf.errors import UsageError, check_choice

KINDS = ("fgsm", "fgsm_rs", "pgd", "trades", "apgd", "apgd_t")
TRAINING_KINDS = ("pgd", "trades", "fgsm_rs")

# Steps and step size (as a multiple of eps) of each kind, the published recipes at eps = 8/255:
# FGSM one step of eps; fast adversarial training (Wong et al. 2020) one step of 10/255 from a random start;
# PGD (Madry et al.) 10 steps of 2/255 from a random start; TRADES 10 steps of 2/255 (its reference uses
# 0.007 at eps 0.031); APGD and APGD-T (per target) 100 steps and their own step sizes.
_STEPS = {"fgsm": 1, "fgsm_rs": 1, "pgd": 10, "trades": 10, "apgd": 100, "apgd_t": 100}
_STEP_FRACTION = {"fgsm": 1.0, "fgsm_rs": 1.25, "pgd": 0.25, "trades": 0.25, "apgd": None, "apgd_t": None}
# What each kind can return (TRADES: always its final iterate).
KEEPS_OF = {"fgsm": selection.KEEPS, "fgsm_rs": selection.KEEPS, "pgd": selection.KEEPS,
            "apgd": ("loss", "misclassified"), "apgd_t": ("misclassified",)}


@dataclasses.dataclass(frozen=True)
class Attack:
    """Settings of one attack. Build with `make_attack` / `make_training_attack` to get each kind's defaults.

    kind: one of KINDS. eps: radius of the ball around the [0, 1] image. step_size: None for the kind's
    default (see _STEP_FRACTION; APGD ignores it). objective: one of objectives.OBJECTIVES ("kl" for TRADES,
    fixed). keep: see `selection` ("last" for training). random_start: PGD/FGSM only (TRADES always starts
    at x + 0.001 N(0, 1), APGD on the eps sphere). unroll: PGD/FGSM/TRADES steps as a Python loop instead of a
    tf.while_loop (a bigger graph, for speed comparisons; APGD always loops). num_targets: APGD-T only, the
    classes ranked 2nd .. (num_targets + 1)th by the clean logits that it tries in turn.
    """

    kind: str
    eps: float = 8.0 / 255.0
    norm: str = "linf"
    steps: int = 10
    step_size: float | None = None
    restarts: int = 1
    objective: str = "ce"
    random_start: bool = True
    keep: str = "misclassified"
    bce_weight: float = 1.0
    rho: float = 0.75
    unroll: bool = False
    num_targets: int = NUM_TARGETS

    def __post_init__(self):
        check_choice("attack kind", self.kind, KINDS)
        geometry.check_norm(self.norm)
        check_number("eps", self.eps, 0.0, strict=False)
        check_count("steps", self.steps)
        check_count("restarts", self.restarts)
        check_count("num_targets", self.num_targets)
        if self.step_size is not None:
            check_number("step_size", self.step_size, 0.0, strict=True)
        if self.kind == "trades":
            if self.objective != "kl":
                raise UsageError(
                    f"TRADES maximises the KL divergence (objective 'kl'), got objective {self.objective!r}"
                )
            if self.keep != "last" or self.restarts != 1:
                raise UsageError("TRADES returns the final iterate of one run: use keep='last' and restarts=1")
        else:
            objectives.check_objective(self.objective)
            selection.check_keep(self.keep, KEEPS_OF[self.kind])
        if self.keep == "last" and self.restarts > 1:
            raise UsageError(f"keep='last' cannot combine restarts={self.restarts}; use keep='loss' or 'misclassified'")

    @property
    def resolved_step_size(self):
        """The step size used: the given one, or the kind's fraction of eps (None for APGD)."""
        if self.step_size is not None or self.kind in ("apgd", "apgd_t"):
            return self.step_size
        return _STEP_FRACTION[self.kind] * self.eps

    @property
    def name(self):
        """A short label for reports, e.g. "pgd-20x5-ce-linf" (steps x restarts)."""
        restarts = f"x{self.restarts}" if self.restarts > 1 else ""
        return f"{self.kind}-{self.steps}{restarts}-{self.objective}-{self.norm}"

    def generate(self, forward, x01, labels, seed=0, targets=None):
        """Adversarial images in [0, 1] for the batch (x01 [B, ...] in [0, 1], labels [B]); no gradient flows
        back through them. seed: int, pair or int tensor [2] (e.g. tf.stack([base, optimizer.iterations])).

        In a train_step, call it before (outside) the GradientTape that records the weight update: the attack
        needs input gradients only, and a tape around it would record its whole loop for nothing.
        """
        if self.kind == "trades":
            if targets is not None:
                raise UsageError("TRADES is untargeted: call generate without targets")
            return trades_adversary(forward, x01, eps=self.eps, step_size=self.resolved_step_size,
                                    steps=self.steps, norm=self.norm, seed=seed, unroll=self.unroll)
        if self.kind == "apgd_t":
            if targets is not None:
                raise UsageError("APGD-T picks its own targets (the runner-up classes): call generate without targets")
            return apgd_targeted(forward, x01, labels, eps=self.eps, steps=self.steps, norm=self.norm,
                                 num_targets=self.num_targets, objective=self.objective, restarts=self.restarts,
                                 seed=seed, bce_weight=self.bce_weight, rho=self.rho)
        if self.kind == "apgd":
            return apgd(forward, x01, labels, eps=self.eps, steps=self.steps, norm=self.norm,
                        objective=self.objective, targets=targets, restarts=self.restarts, keep=self.keep,
                        seed=seed, bce_weight=self.bce_weight, rho=self.rho)
        return pgd(forward, x01, labels, eps=self.eps, step_size=self.resolved_step_size, steps=self.steps,
                   norm=self.norm, objective=self.objective, targets=targets, random_start=self.random_start,
                   restarts=self.restarts, keep=self.keep, seed=seed, bce_weight=self.bce_weight,
                   unroll=self.unroll)


def make_attack(kind, **settings):
    """An `Attack` of `kind` with that kind's default steps, step size, start and objective; `settings`
    override any field (eps=..., steps=..., step_size=..., norm=..., restarts=..., objective=..., keep=...)."""
    check_choice("attack kind", kind, KINDS)
    defaults = {"steps": _STEPS[kind], "random_start": kind != "fgsm"}
    if kind == "trades":
        defaults.update(objective="kl", keep="last")
    if kind == "apgd_t":
        defaults.update(objective="dlr")
    unknown = set(settings) - {f.name for f in dataclasses.fields(Attack)}
    if unknown or "kind" in settings:
        raise UsageError(f"unknown attack settings {sorted(unknown | ({'kind'} & set(settings)))}; "
                         f"choose from {[f.name for f in dataclasses.fields(Attack) if f.name != 'kind']}")
    return Attack(kind=kind, **{**defaults, **settings})


def make_training_attack(kind, **settings):
    """The attack of adversarial training `kind` ("pgd", "trades" or "fgsm_rs"): one run, final iterate."""
    check_choice("adversarial training kind", kind, TRAINING_KINDS)
    return make_attack(kind, **{"keep": "last", **settings})
