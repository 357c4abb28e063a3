"""Adversarial training in RobustTrainer.train_step (--adv=pgd|trades|fgsm_rs): the flags' mapping, the loss each
step trains on for both architectures, batch normalisation during generation, and a robustness gain on the
synthetic set."""

import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from mocse_tf import attacks, losses
from mocse_tf.data import load_arrays
from mocse_tf.errors import UsageError
from mocse_tf.models import mocse, preact_resnet18
from mocse_tf.training.adversarial import AdversarialTraining, make_training_attack
from mocse_tf.training.config import TrainConfig
from mocse_tf.training.trainer import RobustTrainer

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"
EPS = 8 / 255


def tiny_bn_net(num_classes=10, filters=8, seed=0):
    """Three strided conv + BN + ReLU stages and a linear head on [0, 255] pixels: trains in seconds on a CPU."""
    keras.utils.set_random_seed(seed)
    pixels = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(pixels)
    for stage in range(3):
        x = keras.layers.Conv2D(filters * 2**stage, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{stage}")(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(pixels, {"logits": keras.layers.Dense(num_classes)(x)})


def batch(count, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (count, 32, 32, 3)).astype(np.float32)
    return pixels, (np.arange(count) % num_classes).astype(np.int64)


def perturb(adversarial_training, network, pixels, labels, step=0):
    """The examples a train step at optimizer step `step` makes, computed outside the trainer."""
    run = tf.function(lambda p, y: adversarial_training.perturb(network, p, y, tf.constant(step, tf.int64)),
                      autograph=False)
    return run(tf.constant(pixels), tf.constant(labels)).numpy()


def one_step(network, attack, pixels, labels, learning_rate=0.1, bce_weight=1.0):
    trainer = RobustTrainer(network, bce_weight=bce_weight, attack=attack)
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9))
    history = trainer.fit(pixels, labels, batch_size=len(labels), epochs=1, shuffle=False, verbose=0)
    return {name: values[0] for name, values in history.history.items()}


def flagfile(name):
    """{flag: value} of a configs/ flagfile, numbers converted."""
    def value(text):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    lines = (CONFIGS / name).read_text().splitlines()
    return {key: value(text) for key, text in (line[2:].split("=", 1) for line in lines if line.startswith("--"))}


# --- the flags' mapping (no tracing) ------------------------------------------------------------------------


def test_make_training_attack_maps_each_mode_to_its_recipe():
    assert make_training_attack(TrainConfig(adv="none")) is None

    pgd = make_training_attack(TrainConfig(adv="pgd", bce_weight=0.5, seed=7))
    assert (pgd.attack.kind, pgd.attack.steps, pgd.attack.keep, pgd.attack.random_start) == ("pgd", 10, "last", True)
    assert pgd.attack.eps == pytest.approx(8 / 255) and pgd.attack.resolved_step_size == pytest.approx(2 / 255)
    # Madry's inner maximisation is over the loss being trained: for MoCSE CE + bce_weight x BCE.
    assert (pgd.attack.objective, pgd.attack.bce_weight, pgd.seed, pgd.batch_statistics) == \
        ("mocse_total", 0.5, 7, False)

    custom = make_training_attack(TrainConfig(adv="pgd", adv_eps=4 / 255, adv_steps=3, adv_step_size=1 / 255))
    assert (custom.attack.eps, custom.attack.steps, custom.attack.resolved_step_size) == (4 / 255, 3, 1 / 255)

    trades = make_training_attack(TrainConfig(adv="trades", trades_beta=3.0, adv_steps=5))
    assert (trades.attack.kind, trades.attack.objective, trades.attack.steps, trades.trades_beta) == \
        ("trades", "kl", 5, 3.0)
    assert trades.is_trades and not pgd.is_trades

    # Fast adversarial training: one step of 1.25 eps from a random start, whatever --adv_step_size/--adv_steps say.
    fast = make_training_attack(TrainConfig(adv="fgsm_rs", adv_step_size=2 / 255, adv_steps=10))
    assert (fast.attack.steps, fast.attack.random_start) == (1, True)
    assert fast.attack.resolved_step_size == pytest.approx(10 / 255)


def test_bad_attacks_are_refused():
    network = tiny_bn_net(num_classes=3, filters=2)
    with pytest.raises(UsageError, match="make_training_attack"):
        RobustTrainer(network, attack="pgd")
    with pytest.raises(UsageError, match="pgd, trades, fgsm_rs"):
        AdversarialTraining(attacks.make_attack("apgd"))
    with pytest.raises(UsageError, match="trades_beta"):
        AdversarialTraining(attacks.make_training_attack("trades"), trades_beta=-1.0)
    # A bare training attack is accepted and wrapped with the defaults.
    assert RobustTrainer(network, attack=attacks.make_training_attack("pgd")).attack.trades_beta == 6.0
    # The attack must maximise the loss the trainer minimises.
    with pytest.raises(UsageError, match="CE \\+ 0.5 x BCE but the trainer minimises CE \\+ 1.0 x BCE"):
        RobustTrainer(network, bce_weight=1.0, attack=make_training_attack(TrainConfig(adv="pgd", bce_weight=0.5)))


def test_adversarial_flagfiles_are_the_standard_recipe_plus_madry_pgd():
    for arch in ("preact", "mocse"):
        standard, adversarial = flagfile(f"table1_standard_{arch}.flags"), flagfile(f"table1_adversarial_{arch}.flags")
        differing = {k for k in standard.keys() | adversarial.keys() if standard.get(k) != adversarial.get(k)}
        assert differing == {"run_name", "adv", "adv_eps", "adv_step_size", "adv_steps"}
        assert adversarial["run_name"] == f"table1_adversarial_{arch}"
        config = TrainConfig(**adversarial).validate()
        attack = make_training_attack(config).attack
        assert (attack.kind, attack.steps, attack.random_start) == ("pgd", 10, True)
        assert attack.eps == pytest.approx(8 / 255, abs=1e-12)
        assert attack.resolved_step_size == pytest.approx(2 / 255, abs=1e-12)


# --- batch normalisation while generating --------------------------------------------------------------------


@pytest.mark.parametrize("batch_statistics", [False, True], ids=["inference_bn", "batch_bn"])
def test_generation_leaves_bn_statistics_and_weights_to_the_outer_step(batch_statistics):
    network = tiny_bn_net(num_classes=4, filters=4)
    for stage in range(3):  # moving statistics far from the batch's: the two BN modes give different attacks
        bn = network.get_layer(f"bn{stage}")
        bn.moving_mean.assign(tf.fill(bn.moving_mean.shape, 0.3))
        bn.moving_variance.assign(tf.fill(bn.moving_variance.shape, 2.0))
    reference = keras.models.clone_model(network)
    reference.set_weights(network.get_weights())
    adversarial_training = make_training_attack(TrainConfig(adv="pgd", adv_steps=3), batch_statistics=batch_statistics)
    pixels, labels = batch(16, num_classes=4)

    before = [v.numpy().copy() for v in network.variables]
    examples = perturb(adversarial_training, network, pixels, labels, step=0)
    for variable, value in zip(network.variables, before):  # generation writes nothing: weights nor BN statistics
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
    assert np.abs(examples - pixels).max() <= EPS * 255 + 1e-3 and 0 <= examples.min() and examples.max() <= 255
    assert np.abs(examples - pixels).max() > 1.0

    # One adversarial step = one plain step on those examples: the only weight update and the only moving-average
    # update come from the outer training-mode pass.
    one_step(network, adversarial_training, pixels, labels)
    one_step(reference, None, examples, labels)
    moved = 0
    for variable, expected, value in zip(network.variables, reference.variables, before):
        np.testing.assert_allclose(variable.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5, err_msg=variable.path)
        moved += not np.allclose(variable.numpy(), value)
    assert moved == len(network.variables)  # every weight and every BN statistic moved, once


def test_fgsm_rs_generates_in_training_mode_as_fast_adversarial_does():
    network = tiny_bn_net(num_classes=4, filters=4)
    fast = make_training_attack(TrainConfig(adv="fgsm_rs"))
    assert (fast.batch_statistics, fast.update_bn_statistics) == (True, True)
    assert not make_training_attack(TrainConfig(adv="fgsm_rs"), batch_statistics=False).batch_statistics
    pixels, labels = batch(8, num_classes=4)
    weights = [w.numpy().copy() for w in network.trainable_weights]
    moving = network.get_layer("bn0").moving_mean.numpy().copy()
    perturb(fast, network, pixels, labels)
    # Its pass normalises with the batch's statistics and moves the moving averages (PyTorch train() mode);
    # the weights change only in the outer step.
    assert not np.allclose(network.get_layer("bn0").moving_mean.numpy(), moving)
    for weight, value in zip(network.trainable_weights, weights):
        np.testing.assert_array_equal(weight.numpy(), value)


def test_the_two_bn_modes_make_different_examples():
    network = tiny_bn_net(num_classes=4, filters=4)
    bn = network.get_layer("bn0")
    bn.moving_variance.assign(tf.fill(bn.moving_variance.shape, 9.0))
    pixels, labels = batch(8, num_classes=4)
    modes = [perturb(make_training_attack(TrainConfig(adv="pgd", adv_steps=2), batch_statistics=b), network, pixels,
                     labels) for b in (False, True)]
    assert np.mean(modes[0] != modes[1]) > 0.05


# --- the loss of each step, both architectures ---------------------------------------------------------------


ARCHS = {"preact": lambda: preact_resnet18(num_classes=3, width=2), "mocse": lambda: mocse(num_classes=2, expert_width=2)}


@pytest.mark.parametrize("arch, mode", [("preact", "pgd"), ("preact", "trades"), ("mocse", "pgd"), ("mocse", "trades")])
def test_train_step_trains_on_the_loss_of_its_adversarial_batch(arch, mode):
    keras.utils.set_random_seed(1)
    network = ARCHS[arch]()
    num_classes = network.output["logits"].shape[-1]
    adversarial_training = make_training_attack(TrainConfig(adv=mode, adv_steps=2, bce_weight=0.5, trades_beta=6.0))
    pixels, labels = batch(8, num_classes, seed=3)
    examples = perturb(adversarial_training, network, pixels, labels)
    with keras.StatelessScope():  # training-mode passes that leave the BN statistics for the trainer's step
        adv_outputs = network(examples, training=True)
        clean_outputs = network(pixels, training=True)
    if mode == "pgd":
        outputs = adv_outputs
        expected = {"loss": np.mean(losses.mocse_total_loss(labels, adv_outputs, 0.5))}
    else:
        outputs = clean_outputs
        kl = np.mean(attacks.trades_kl(clean_outputs["logits"], adv_outputs["logits"]))
        expected = {"kl": kl, "loss": np.mean(losses.mocse_total_loss(labels, clean_outputs, 0.5)) + 6.0 * kl,
                    "adv_accuracy": np.mean(np.argmax(adv_outputs["logits"], -1) == labels)}
    expected["ce"] = np.mean(losses.class_cross_entropy(labels, outputs["logits"]))
    expected["accuracy"] = np.mean(np.argmax(outputs["logits"], -1) == labels)
    if arch == "mocse":
        expected["bce"] = np.mean(losses.expert_binary_cross_entropy(labels, outputs["expert_logits"]))
        expected["expert_accuracy"] = np.mean(losses.expert_binary_accuracy(labels, outputs["expert_logits"]))
    before = [w.numpy().copy() for w in network.trainable_weights]

    logged = one_step(network, adversarial_training, pixels, labels, bce_weight=0.5)

    assert set(logged) == set(expected)
    for name, value in expected.items():
        assert logged[name] == pytest.approx(float(value), rel=1e-4, abs=1e-6), name
    if mode == "trades":
        assert logged["kl"] > 0
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, network.trainable_weights))


# --- adversarial training makes a model robust --------------------------------------------------------------


def pgd_accuracy(network, images, labels, eps=EPS, steps=10):
    """Fraction of images classified correctly both clean and under PGD-`steps` (step eps / 4)."""
    forward = attacks.model_forward(network)
    x01 = tf.constant(images.astype(np.float32) / 255.0)
    attack = attacks.make_attack("pgd", eps=eps, steps=steps)
    adversarial = tf.function(lambda x, y: attack.generate(forward, x, y, seed=1), autograph=False)(x01, labels)
    clean = np.argmax(forward(x01)["logits"], -1) == labels
    return float(np.mean(clean)), float(np.mean(clean & (np.argmax(forward(adversarial)["logits"], -1) == labels)))


def test_pgd_training_makes_a_tiny_model_robust_on_the_synthetic_set():
    train = load_arrays("synthetic", "train", num_examples=2000)
    test = load_arrays("synthetic", "test", num_examples=300)
    accuracies = {}
    for adv in ("none", "pgd"):
        network = tiny_bn_net(filters=16)
        epochs, batch_size = 6, 50
        # PGD-3 with Madry's step rule (2.5 eps / steps) keeps the run short.
        trainer = RobustTrainer(network, attack=make_training_attack(TrainConfig(adv=adv, adv_steps=3,
                                                                                 adv_step_size=2.5 * EPS / 3)))
        schedule = keras.optimizers.schedules.CosineDecay(0.1, epochs * len(train) // batch_size)
        trainer.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9))
        trainer.fit(train.images, train.labels, batch_size=batch_size, epochs=epochs, verbose=0)
        accuracies[adv] = pgd_accuracy(network, test.images, test.labels)
    print("clean, PGD-10 accuracy at 8/255:", accuracies)
    (clean_none, robust_none), (clean_pgd, robust_pgd) = accuracies["none"], accuracies["pgd"]
    assert clean_none > 0.3 and clean_pgd > 0.3  # both learnt (chance is 0.1)
    assert robust_pgd > robust_none + 0.15 and robust_pgd > 2 * robust_none


@pytest.mark.slow
def test_pgd_trained_preact_resnet_beats_a_standard_one_under_pgd(tmp_path):
    """The real run (bin/train's `train`, augmentation, export) and bin/eval_adv's evaluation of the export."""
    from mocse_tf.evaluation.adversarial_eval import run_eval_adv
    from mocse_tf.evaluation.config import EvalConfig
    from mocse_tf.training.run import train

    robust = {}
    for adv in ("none", "pgd"):
        config = TrainConfig(arch="preact_resnet18", width=4, dataset="synthetic", num_train_examples=2000,
                             num_test_examples=300, epochs=4, batch_size=50, learning_rate=0.05, adv=adv,
                             adv_steps=3, adv_step_size=EPS / 2, output_dir=str(tmp_path / adv / "run"),
                             export_dir=str(tmp_path / adv / "exports"), run_name=adv, verbose=0)
        results = train(config)
        report, _, _ = run_eval_adv(EvalConfig(models=[results["saved_model"]], model_names=[adv], dataset="synthetic",
                                               num_examples=300, attacks="pgd10", output_dir=str(tmp_path / adv / "eval")),
                                    log=lambda line: None)
        entry = report["models"][adv]
        robust[adv] = (entry["clean"], next(iter(entry["adversarial"].values())))
    print("clean, PGD-10 accuracy at 8/255:", robust)
    assert robust["pgd"][1] > robust["none"][1] + 0.1
