#!/usr/bin/env python3
"""mocse_tf's APGD-CE, APGD-T and Square against the adversarial-robustness-toolbox (ART) on the same Keras model
and the same images: robust accuracy and images/s, as ratios measured back to back in one run.

ART runs through its `TensorFlowV2Classifier` (`pip install -e ".[bench]"`; a benchmark-only dependency). Both
sides attack the clean-correct images; robust accuracy = correct clean and at the attack's point, on all images.
APGD-T on both sides tries the 9 classes ranked 2nd to 10th by the clean logits, one targeted run each on the
images not yet fooled, counting any misclassification (ART's own targeted APGD counts only the target; its
returned points are judged the same way here). Each side attacks a few images once before the clock starts
(mocse_tf traces its graphs, ART builds its estimator).

Models: "small" is a small conv net trained clean, then with PGD-7 (mocse_tf's trainer), on the real CIFAR-10 subset
in ../shared/data/cifar10-mini; "resnet" is PreAct-ResNet-18 at --resnet_width (64 = the paper's), untrained, for
speed only, at a reduced scale (--resnet_images, --resnet_steps, --resnet_queries) on a CPU.

  python bench/autoattack.py                       # both models, defaults below
  python bench/autoattack.py --models=small --images=200 --queries=1000
  python bench/autoattack.py --models=small --attacks=Square --repeats=3 --norms=linf,l2
  python bench/autoattack.py --models=small --attacks=Square --norms=linf,l2 --per_iteration
"""

import argparse
import functools
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from mocse_tf import attacks  # noqa: E402
from mocse_tf.attacks import autoattack, square  # noqa: E402
from mocse_tf.data import load_arrays  # noqa: E402

# The radius of each threat model (as RobustBench reports them), in [0, 1] image units.
RADIUS = {"linf": 8 / 255, "l2": 0.5}
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "cifar10-mini")


def small_net(seed=0):
    """Three strided 3x3 convolutions (8, 16, 32 filters) and a dense head: 0.2 M multiply-accumulates per image,
    small enough that each attack step's fixed cost shows."""
    keras.utils.set_random_seed(seed)
    pixels = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(pixels)
    for filters in (8, 16, 32):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(pixels, {"logits": keras.layers.Dense(10)(x)})


def pgd_trained_small_net(clean_epochs, epochs, eps):
    """The small net after `clean_epochs` of standard training and `epochs` of PGD-7 adversarial training (eps,
    step eps/4) on the cifar10-mini images (PGD from scratch collapses to one class for this small net)."""
    from mocse_tf.training.trainer import RobustTrainer

    train = load_arrays("cifar10_local", "train", local_dir=DATA)
    images, labels = train.images.astype(np.float32), np.asarray(train.labels, np.int64)
    network = small_net()
    started = time.perf_counter()
    attack = attacks.make_training_attack("pgd", eps=eps, steps=7, step_size=eps / 4)
    for attack_or_none, count in ((None, clean_epochs), (attack, epochs)):
        trainer = RobustTrainer(network, attack=attack_or_none)
        trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
        trainer.fit(images, labels, batch_size=64, epochs=count, verbose=0)
    print(f"  small net: {clean_epochs} clean + {epochs} PGD-7 epochs on {len(labels)} images in "
          f"{time.perf_counter() - started:.0f} s")
    return network


def x01_model(network):
    """The network as ART sees it: float images in [0, 1] -> class logits."""
    inputs = keras.Input(network.input_shape[1:])
    return keras.Model(inputs, network(inputs * 255.0)["logits"])


# --- the two sides ----------------------------------------------------------------------------------------------


def ours(network, eps, norm, steps, queries, batch):
    forward = attacks.model_forward(network)
    shape = network.input_shape[1:]
    # Square with the p schedule rescaled to the query budget, as ART's SquareAttack always runs it: the same
    # window sizes on both sides. (AutoAttack's own stage keeps the 10000-query schedule.)
    stages = {"APGD-CE": autoattack.apgd_stage(eps, norm, steps=steps),
              "APGD-T": autoattack.apgd_t_stage(eps, norm, steps=steps),
              "Square": autoattack.square_stage(eps, norm, queries=queries, rescale_schedule=True)}
    built = {name: stage.build(forward, shape) for name, stage in stages.items()}

    def run(name, x, y):
        return np.concatenate([built[name](x[i:i + batch], y[i:i + batch], 0) for i in range(0, len(x), batch)])

    return run


def art(network, eps, norm, steps, queries, batch):
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack
    from art.estimators.classification import TensorFlowV2Classifier

    model = x01_model(network)
    norm = np.inf if norm == "linf" else 2
    classifier = TensorFlowV2Classifier(model=model, nb_classes=10, input_shape=tuple(network.input_shape[1:]),
                                        loss_object=tf.keras.losses.CategoricalCrossentropy(from_logits=True),
                                        clip_values=(0.0, 1.0))

    def run(name, x, y):
        if name == "APGD-CE":
            attack = AutoProjectedGradientDescent(classifier, norm=norm, eps=eps, eps_step=2 * eps, max_iter=steps,
                                                  nb_random_init=1, batch_size=batch, loss_type="cross_entropy",
                                                  verbose=False)
            return attack.generate(x=x, y=np.eye(10)[y])
        if name == "Square":
            attack = SquareAttack(classifier, norm=norm, eps=eps, max_iter=queries, p_init=0.8, nb_restarts=1,
                                  batch_size=batch, verbose=False)
            return attack.generate(x=x, y=np.eye(10)[y])
        # APGD-T: ART's targeted APGD on its DLR loss, towards each ranked target, on the images not yet fooled.
        attack = AutoProjectedGradientDescent(classifier, norm=norm, eps=eps, eps_step=2 * eps, max_iter=steps,
                                              targeted=True, nb_random_init=1, batch_size=batch,
                                              loss_type="difference_logits_ratio", verbose=False)
        logits = classifier.predict(x, batch_size=batch)
        ranking = np.argsort(-logits, axis=1)
        x_adv = x.copy()
        robust = np.argmax(logits, axis=1) == y
        for rank in range(1, 10):
            chosen = np.flatnonzero(robust)
            if not len(chosen):
                break
            found = attack.generate(x=x[chosen], y=np.eye(10)[ranking[chosen, rank]])
            fooled = np.argmax(classifier.predict(found, batch_size=batch), axis=1) != y[chosen]
            x_adv[chosen[fooled]] = found[fooled]
            robust[chosen[fooled]] = False
        return x_adv

    return run


def _radius(norm, eps):
    return f"L-inf eps {eps * 255:.0f}/255" if norm == "linf" else f"L2 eps {eps:g}"


def robust_accuracy(network, x_adv, x, y, eps, norm):
    logits = network(x_adv * 255.0)["logits"].numpy()
    delta = (x_adv - x).reshape(len(x), -1).astype(np.float64)
    size = np.abs(delta).max(axis=1) if norm == "linf" else np.sqrt(np.sum(delta ** 2, axis=1))
    inside = size <= eps + 1e-5
    return float(np.mean((np.argmax(logits, axis=1) == y) | ~inside))


def non_finite(x_adv):
    """How many returned images hold a NaN or an infinity (counted robust by `robust_accuracy`: not inside the
    ball)."""
    return int(np.sum(~np.isfinite(x_adv.reshape(len(x_adv), -1)).all(axis=1)))


def clean_correct(network, x, y):
    """Which images the network classifies correctly."""
    return np.argmax(network(x * 255.0)["logits"].numpy(), axis=1) == y


def fastest(sides, repeats):
    """Runs each side's `run()` `repeats` times, the sides alternating (the machine is shared); returns each side's
    fastest time in seconds and its last result."""
    seconds, results = {side: float("inf") for side in sides}, {}
    for _ in range(repeats):
        for side, run in sides.items():
            started = time.perf_counter()
            results[side] = run()
            seconds[side] = min(seconds[side], time.perf_counter() - started)
    return seconds, results


def compare(title, network, x, y, *, eps, norm, steps, queries, batch, names, repeats):
    correct = clean_correct(network, x, y)
    xc, yc = x[correct], y[correct]
    print(f"\n{title}: {len(x)} images, clean {100 * correct.mean():.1f}%, {_radius(norm, eps)}, APGD {steps} "
          f"steps, Square {queries} queries, batch {batch}")
    print("| attack | mocse_tf robust % | ART robust % | mocse_tf img/s | ART img/s | speed ratio | "
          "non-finite images mocse_tf / ART |")
    print("|---|---|---|---|---|---|---|")
    sides = {"mocse_tf": ours(network, eps, norm, steps, queries, batch),
             "ART": art(network, eps, norm, steps, queries, batch)}
    for name in names:
        for side, run in sides.items():
            run(name, xc[:2], yc[:2])  # warm-up: tracing (mocse_tf), estimator set-up (ART)
        seconds, found = fastest({side: functools.partial(run, name, xc, yc) for side, run in sides.items()},
                                 repeats)
        row = {side: (100 * robust_accuracy(network, found[side], xc, yc, eps, norm) * correct.mean(),
                      len(xc) / seconds[side], non_finite(found[side])) for side in sides}
        print(f"| {name} | {row['mocse_tf'][0]:.1f} | {row['ART'][0]:.1f} | {row['mocse_tf'][1]:.2f} | "
              f"{row['ART'][1]:.2f} | {row['mocse_tf'][1] / row['ART'][1]:.1f}x | "
              f"{row['mocse_tf'][2]} / {row['ART'][2]} |", flush=True)


def square_per_iteration(network, x, y, *, norm, queries, batch, repeats):
    """Square's cost per iteration on images none of which is fooled (eps a hundredth of the radius: every
    iteration queries every image), for mocse_tf, ART, and a loop that only runs the network and the margin,
    each iteration on inputs that depend on the last one's result as in Square: the least any Square iteration
    can cost with this network here, so ART / that loop bounds the speed ratio any implementation could reach.
    ART's L2 Square returns non-finite images for some (it then counts them fooled and stops querying them), so
    its L2 time covers less work; the last column counts them."""
    forward = attacks.model_forward(network)
    xt, yt = tf.constant(x), tf.constant(y, autoattack.LABEL_DTYPE)
    eps = RADIUS[norm] / 100  # small enough that nothing is fooled, large enough for ART's L2 arithmetic
    ours_square = autoattack.square_stage(eps, norm, queries=queries, rescale_schedule=True).build(
        forward, network.input_shape[1:])
    art_run = art(network, eps, norm, 1, queries, batch)

    @tf.function
    def forward_chain(x01, labels):
        def body(i, total):
            margin, _ = square.margin_and_loss(forward(x01 + 1e-12 * total)["logits"], labels)
            return i + 1, total + tf.reduce_sum(margin)
        return tf.while_loop(lambda i, total: i < queries, body, (tf.constant(0), tf.constant(0.0)))[1]

    sides = {"mocse_tf": lambda: ours_square(x, y, 0), "ART": lambda: art_run("Square", x, y),
             "forward only": lambda: forward_chain(xt, yt).numpy()}
    for run in sides.values():
        run()  # warm-up: tracing (mocse_tf and the chain), estimator set-up (ART)
    seconds, found = fastest(sides, repeats)
    finite = {side: non_finite(found[side]) for side in ("mocse_tf", "ART")}
    fooled = {side: int(np.sum(~clean_correct(network, np.nan_to_num(found[side]), y))) for side in finite}
    ms = {side: 1000 * value / queries for side, value in seconds.items()}
    print(f"| {norm} | {len(x)} | {ms['ART']:.3f} | {ms['mocse_tf']:.3f} | {ms['forward only']:.3f} | "
          f"{ms['ART'] / ms['mocse_tf']:.1f}x | {ms['ART'] / ms['forward only']:.1f}x | "
          f"{fooled['mocse_tf']} / {fooled['ART']} | {finite['mocse_tf']} / {finite['ART']} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="small,resnet")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clean_epochs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--attacks", default="APGD-CE,APGD-T,Square",
                        help="which rows to measure, comma-separated (the ResNet rows skip APGD-T)")
    parser.add_argument("--cache", default="/tmp/mocse_tf_bench_small_pgd_v2.keras",
                        help="where the trained small net is kept between runs ('' to retrain every time)")
    parser.add_argument("--norms", default="linf",
                        help="threat models, comma-separated: linf (eps 8/255), l2 (eps 0.5); a table for each")
    parser.add_argument("--per_iteration", action="store_true",
                        help="small net: also time one Square iteration (eps radius / 100, nothing fooled) against "
                             "ART and against a loop that only runs the network, chained as Square's iterations are")
    parser.add_argument("--resnet_width", type=int, default=64)
    parser.add_argument("--resnet_images", type=int, default=8)
    parser.add_argument("--resnet_steps", type=int, default=10)
    parser.add_argument("--resnet_queries", type=int, default=30)
    args = parser.parse_args()
    wanted = args.attacks.split(",")
    unknown = sorted(set(wanted) - {"APGD-CE", "APGD-T", "Square"})
    if unknown:
        parser.error(f"--attacks takes APGD-CE, APGD-T, Square; got {', '.join(unknown)}")
    norms = args.norms.split(",")
    unknown = sorted(set(norms) - set(RADIUS))
    if unknown:
        parser.error(f"--norms takes {', '.join(RADIUS)}; got {', '.join(unknown)}")
    eps = RADIUS["linf"]  # the small net's PGD training
    test = load_arrays("cifar10_local", "test", local_dir=DATA)
    x, y = test.images.astype(np.float32) / 255.0, np.asarray(test.labels, np.int64)
    print(f"TensorFlow {tf.__version__}, keras {keras.__version__}")
    if "small" in args.models:
        if args.cache and os.path.exists(args.cache):
            network = keras.models.load_model(args.cache, compile=False)
            print(f"  small net loaded from {args.cache}")
        else:
            network = pgd_trained_small_net(args.clean_epochs, args.epochs, eps)
            if args.cache:
                network.save(args.cache)
        for norm in norms:
            compare("small conv net, PGD-trained", network, x[:args.images], y[:args.images], eps=RADIUS[norm],
                    norm=norm, steps=args.steps, queries=args.queries, batch=args.batch,
                    names=[n for n in ("APGD-CE", "APGD-T", "Square") if n in wanted], repeats=args.repeats)
        if args.per_iteration:
            correct = clean_correct(network, x[:args.images], y[:args.images])
            print(f"\nSquare per iteration, {args.queries} queries on the clean-correct images, eps radius / 100 "
                  "(ms per iteration, fastest of --repeats, the three sides alternating)")
            print("| norm | images | ART | mocse_tf | network only, chained | ART / mocse_tf | ART / network only "
                  "(ceiling) | fooled mocse_tf / ART | non-finite mocse_tf / ART |")
            print("|---|---|---|---|---|---|---|---|---|")
            for norm in norms:
                square_per_iteration(network, x[:args.images][correct], y[:args.images][correct], norm=norm,
                                     queries=args.queries, batch=args.batch, repeats=args.repeats)
    if "resnet" in args.models:
        from mocse_tf.models import preact_resnet18

        keras.utils.set_random_seed(0)
        network = preact_resnet18(num_classes=10, width=args.resnet_width)
        images = x[:args.resnet_images]
        # Untrained: its own predictions serve as labels, so every image is attacked.
        predicted = np.argmax(network(images * 255.0)["logits"].numpy(), axis=1)
        for norm in norms:
            compare(f"PreAct-ResNet-18 width {args.resnet_width}, untrained (speed only, reduced scale)", network,
                    images, predicted, eps=RADIUS[norm], norm=norm, steps=args.resnet_steps,
                    queries=args.resnet_queries, batch=args.resnet_images,
                    names=[n for n in ("APGD-CE", "Square") if n in wanted], repeats=args.repeats)


if __name__ == "__main__":
    main()
