#!/usr/bin/env python3
"""Peer check of mocse_tf's AutoAttack against the reference implementation itself, fra31/auto-attack (PyTorch):
the same network in both frameworks, the same images, each attack run on both sides, robust accuracy and images/s.

The reference is not a dependency of mocse_tf and is not installed by it; this script imports it from a checkout
whose path you pass, and needs the CPU PyTorch (the `bench` extra):

  git clone https://github.com/fra31/auto-attack /path/to/auto-attack
  pip install -e ".[bench]"              # torch (CPU wheel: --index-url https://download.pytorch.org/whl/cpu)
  python bench/autoattack_reference.py --reference_dir=/path/to/auto-attack

The network: two conv(3x3, same)-ReLU-maxpool(2) blocks (8 and 16 filters) and a dense layer, channels_last,
taking raw [0, 1] images; trained briefly on the real CIFAR-10 subset in ../shared/data/cifar10-mini (a few clean
epochs, then PGD adversarial training with mocse_tf's trainer, so that robust accuracy at 8/255 is neither 0 nor
the clean accuracy). The same network is then built in PyTorch (NCHW; kernels transposed; flattened in HWC order
as Keras does) and its logits must equal the Keras logits to 1e-4 on the evaluation images before any attack runs.

Attacks (each side attacks the clean-correct images; robust accuracy is over all images and judged by the Keras
network, a returned point outside the eps ball or [0, 1] counting as not fooling):
  APGD-CE (100 steps), APGD-T (9 targets x 100 steps), FAB-T (9 targets x 100 steps), Square (--queries, the
  p schedule not rescaled, as AutoAttack builds it), and the standard cascade (reference:
  AutoAttack(model, norm, eps, version='standard') with its Square object set to --queries).
Random starts and draws differ between the two (different generators), so robust accuracies can differ by a
point or two on 100 images without either being wrong. The table also counts the images robust on one side only.
Timing: one run per side after a warm-up on 2 images (mocse_tf traces its graphs, the cascade's too: `run_autoattack`
reuses them for the same forward and stages); the reference runs with --torch_threads=1,
its fastest setting on a shared, loaded CPU.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# TensorFlow, Keras and mocse_tf are imported by `_import_stack` once the arguments are checked, so a wrong
# --reference_dir fails at once with one line, not after TensorFlow's start-up and its notices.
keras = tf = attacks = autoattack = load_arrays = None

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "cifar10-mini")
ATTACKS = ("APGD-CE", "APGD-T", "FAB-T", "Square", "AutoAttack")
# The reference's names of the norms.
REFERENCE_NORMS = {"linf": "Linf", "l2": "L2"}
EPS = {"linf": 8 / 255, "l2": 0.5}
LOGIT_TOLERANCE = 1e-4


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _import_stack():
    global keras, tf, attacks, autoattack, load_arrays
    import keras
    import tensorflow as tf

    from mocse_tf import attacks
    from mocse_tf.attacks import autoattack
    from mocse_tf.data import load_arrays


def check_reference_dir(reference_dir):
    if not reference_dir:
        fail("--reference_dir is required: a checkout of the reference, "
             "git clone https://github.com/fra31/auto-attack /path/to/auto-attack")
    package = os.path.join(reference_dir, "autoattack")
    needed = ("autoattack.py", "autopgd_base.py", "fab_pt.py", "square.py")
    if not all(os.path.isfile(os.path.join(package, name)) for name in needed):
        fail(f"--reference_dir={reference_dir!r} is not a checkout of fra31/auto-attack (no autoattack/"
             f"{{{', '.join(needed)}}}); get one with git clone https://github.com/fra31/auto-attack")


def import_reference(reference_dir):
    """The reference's `autoattack` package from a checkout of https://github.com/fra31/auto-attack, and torch."""
    package = os.path.join(reference_dir, "autoattack")
    try:
        import torch
    except ImportError:
        fail("the reference needs PyTorch: pip install -e \".[bench]\" (CPU wheel: "
             "--index-url https://download.pytorch.org/whl/cpu)")
    sys.path.insert(0, os.path.abspath(reference_dir))
    import autoattack as reference

    if not os.path.abspath(reference.__file__).startswith(os.path.abspath(package)):
        fail(f"imported autoattack from {reference.__file__}, not from --reference_dir={reference_dir!r}")
    return torch, reference


# --- the network, in Keras and in PyTorch -----------------------------------------------------------------------


def keras_net(seed=0):
    """[0, 1] images [B, 32, 32, 3] -> logits [B, 10]."""
    keras.utils.set_random_seed(seed)
    images = keras.Input((32, 32, 3))
    x = images
    for filters in (8, 16):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(images, keras.layers.Dense(10)(x))


def train(network, clean_epochs, pgd_epochs, eps):
    """A few clean epochs, then PGD-5 adversarial training (L-inf eps, step eps / 3) with mocse_tf's trainer, which
    feeds [0, 255] pixels: it trains a wrapper that scales them to [0, 1] and shares the network's weights."""
    from mocse_tf.training.trainer import RobustTrainer

    data = load_arrays("cifar10_local", "train", local_dir=DATA)
    images, labels = data.images.astype(np.float32), np.asarray(data.labels, np.int64)
    pixels = keras.Input((32, 32, 3))
    wrapper = keras.Model(pixels, {"logits": network(pixels / 255.0)})
    attack = attacks.make_training_attack("pgd", eps=eps, steps=5, step_size=eps / 3)
    started = time.perf_counter()
    for attack_or_none, epochs in ((None, clean_epochs), (attack, pgd_epochs)):
        if epochs:
            trainer = RobustTrainer(wrapper, attack=attack_or_none)
            trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
            trainer.fit(images, labels, batch_size=64, epochs=epochs, verbose=0)
    print(f"trained: {clean_epochs} clean + {pgd_epochs} PGD-5 epochs on {len(labels)} real CIFAR-10 images in "
          f"{time.perf_counter() - started:.0f} s")


def torch_twin(torch, network):
    """The same network in PyTorch, NCHW, with the Keras weights: conv kernels [kh, kw, in, out] -> [out, in, kh,
    kw], dense [in, out] -> [out, in]; the activations are flattened in Keras's H, W, C order."""
    nn = torch.nn
    convs = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)][0]

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList()
            for layer in convs:
                kernel, bias = (np.asarray(w) for w in layer.get_weights())
                conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[0], padding=kernel.shape[0] // 2)
                conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
                conv.bias.data = torch.from_numpy(bias)
                self.convs.append(conv)
            kernel, bias = (np.asarray(w) for w in dense.get_weights())
            self.dense = nn.Linear(kernel.shape[0], kernel.shape[1])
            self.dense.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.T))
            self.dense.bias.data = torch.from_numpy(bias)

        def forward(self, x):
            for conv in self.convs:
                x = nn.functional.max_pool2d(nn.functional.relu(conv(x)), 2)
            return self.dense(x.permute(0, 2, 3, 1).flatten(1))

    return Twin().eval()


# --- the two sides ----------------------------------------------------------------------------------------------


def ours(network, norm, eps, queries, seed):
    """attack name -> run(x NHWC, y) -> x_adv NHWC, with mocse_tf's stages."""
    forward = attacks.model_forward(network, pixel_scale=1.0)
    shape = network.input_shape[1:]
    stages = {"APGD-CE": autoattack.apgd_stage(eps, norm), "APGD-T": autoattack.apgd_t_stage(eps, norm),
              "FAB-T": autoattack.fab_t_stage(eps, norm), "Square": autoattack.square_stage(eps, norm,
                                                                                           queries=queries)}
    built = {}

    def run(name, x, y):
        if name == "AutoAttack":
            result = autoattack.run_autoattack(
                forward, x, y, autoattack.standard_stages(eps, norm, num_classes=10, square_queries=queries),
                eps=eps, norm=norm, batch_size=len(x), seed=seed, log=lambda line: None)
            return result.x_adv
        if name not in built:
            built[name] = stages[name].build(forward, shape)
        return built[name](x, y, seed)

    return run


def reference_side(torch, reference, twin, norm, eps, queries, seed):
    """attack name -> run(x NHWC, y) -> x_adv NHWC, with the reference's attack objects (on the CPU)."""
    from autoattack.autopgd_base import APGDAttack, APGDAttack_targeted
    from autoattack.fab_pt import FABAttack_PT
    from autoattack.square import SquareAttack

    ref_norm = REFERENCE_NORMS[norm]

    def make(name):
        if name == "APGD-CE":
            return APGDAttack(twin, n_iter=100, norm=ref_norm, n_restarts=1, eps=eps, seed=seed, loss="ce",
                              device="cpu")
        if name == "APGD-T":
            return APGDAttack_targeted(twin, n_iter=100, norm=ref_norm, n_restarts=1, eps=eps, seed=seed,
                                       n_target_classes=9, device="cpu")
        if name == "FAB-T":
            return FABAttack_PT(twin, norm=ref_norm, n_restarts=1, n_iter=100, eps=eps, seed=seed, targeted=True,
                                n_target_classes=9, device="cpu")
        if name == "Square":  # as AutoAttack builds it: p schedule not rescaled
            return SquareAttack(twin, p_init=0.8, n_queries=queries, eps=eps, norm=ref_norm, n_restarts=1, seed=seed,
                                device="cpu", resc_schedule=False)
        cascade = reference.AutoAttack(twin, norm=ref_norm, eps=eps, version="standard", seed=seed, device="cpu",
                                       verbose=False)
        cascade.square.n_queries = queries
        return cascade

    def run(name, x, y):
        attack = make(name)
        x_t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        y_t = torch.from_numpy(y.astype(np.int64))
        if name == "AutoAttack":
            found = attack.run_standard_evaluation(x_t, y_t, bs=len(x))
        else:
            found = attack.perturb(x_t, y_t)
        return found.detach().cpu().numpy().transpose(0, 2, 3, 1)

    return run


def robust(network, x_adv, x, y, eps, norm):
    """bool [n]: still correct at x_adv, or x_adv is outside the eps ball or [0, 1] (then it does not count)."""
    predicted = np.argmax(network.predict(x_adv, batch_size=len(x_adv), verbose=0), axis=1)
    delta = (x_adv - x).reshape(len(x), -1).astype(np.float64)
    size = np.abs(delta).max(axis=1) if norm == "linf" else np.sqrt((delta ** 2).sum(axis=1))
    inside = (size <= eps + 1e-5) & (x_adv.reshape(len(x), -1).min(axis=1) >= 0) \
        & (x_adv.reshape(len(x), -1).max(axis=1) <= 1)
    return (predicted == y) | ~inside


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference_dir", default="",
                        help="a checkout of https://github.com/fra31/auto-attack (required)")
    parser.add_argument("--images", type=int, default=100, help="the first N real CIFAR-10 test images")
    parser.add_argument("--queries", type=int, default=1000,
                        help="Square's query budget on both sides (standard: 5000)")
    parser.add_argument("--norms", default="linf", help="comma-separated: linf (eps 8/255), l2 (eps 0.5)")
    parser.add_argument("--attacks", default=",".join(ATTACKS), help=f"comma-separated, of {', '.join(ATTACKS)}")
    parser.add_argument("--seed", type=int, default=0, help="the attacks' seed on both sides")
    parser.add_argument("--clean_epochs", type=int, default=4)
    parser.add_argument("--pgd_epochs", type=int, default=6)
    parser.add_argument("--torch_threads", type=int, default=1,
                        help="PyTorch intra-op threads for the reference (0: PyTorch's default). On a shared, "
                        "loaded CPU PyTorch's default spins its threads against the other processes: a forward and "
                        "backward pass of this net on 36 images took 0.85 s with 2 threads and 0.064 s with 1")
    parser.add_argument("--cache", default="/tmp/mocse_tf_bench_reference_net.keras",
                        help="where the trained network is kept between runs ('' to retrain every time)")
    args = parser.parse_args()
    check_reference_dir(args.reference_dir)
    norms = args.norms.split(",")
    names = args.attacks.split(",")
    for norm in norms:
        if norm not in EPS:
            fail(f"--norms: unknown norm {norm!r}; choose from {', '.join(EPS)}")
    for name in names:
        if name not in ATTACKS:
            fail(f"--attacks: unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
    if args.images < 1 or args.queries < 1 or args.torch_threads < 0 or args.seed < 0:
        fail(f"--images and --queries must be >= 1, --torch_threads and --seed >= 0, got {args.images}, "
             f"{args.queries}, {args.torch_threads} and {args.seed}")
    torch, reference = import_reference(args.reference_dir)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    _import_stack()

    test = load_arrays("cifar10_local", "test", local_dir=DATA, num_examples=args.images)
    x, y = test.images.astype(np.float32) / 255.0, np.asarray(test.labels, np.int64)
    if args.cache and os.path.exists(args.cache):
        network = keras.models.load_model(args.cache, compile=False)
        print(f"network loaded from {args.cache}")
    else:
        network = keras_net()
        train(network, args.clean_epochs, args.pgd_epochs, 8 / 255)
        if args.cache:
            network.save(args.cache)
    twin = torch_twin(torch, network)
    keras_logits = network.predict(x, batch_size=len(x), verbose=0)
    with torch.no_grad():
        torch_logits = twin(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    gap = float(np.abs(keras_logits - torch_logits).max())
    if not gap <= LOGIT_TOLERANCE:
        fail(f"the PyTorch twin's logits differ from the Keras network's by {gap:.2e} > {LOGIT_TOLERANCE}")
    correct = np.argmax(keras_logits, axis=1) == y
    xc, yc = x[correct], y[correct]
    print(f"TensorFlow {tf.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), reference "
          f"{reference.__file__}")
    print(f"{len(x)} images, clean accuracy {100 * correct.mean():.1f}%; Keras vs PyTorch logits: max |diff| "
          f"{gap:.1e}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    for norm in norms:
        eps = EPS[norm]
        print(f"\n{norm} eps {eps:.4f}: {len(xc)} clean-correct images attacked; Square {args.queries} queries")
        print("| attack | robust % mocse_tf | robust % reference | difference | robust only in mocse_tf / only in "
              "reference | img/s mocse_tf | img/s reference | speed ratio |")
        print("|---|---|---|---|---|---|---|---|")
        sides = {"mocse_tf": ours(network, norm, eps, args.queries, args.seed),
                 "reference": reference_side(torch, reference, twin, norm, eps, args.queries, args.seed)}
        for name in names:
            row = {}
            for side, run in sides.items():
                run(name, xc[:2], yc[:2])  # warm-up: mocse_tf traces its graphs
                started = time.perf_counter()
                x_adv = np.asarray(run(name, xc, yc), np.float32)
                seconds = time.perf_counter() - started
                survived = robust(network, x_adv, xc, yc, eps, norm)
                row[side] = (100 * survived.sum() / len(x), len(xc) / seconds, survived)
            ours_row, ref_row = row["mocse_tf"], row["reference"]
            only_ours, only_ref = int(np.sum(ours_row[2] & ~ref_row[2])), int(np.sum(ref_row[2] & ~ours_row[2]))
            print(f"| {name} | {ours_row[0]:.1f} | {ref_row[0]:.1f} | {ours_row[0] - ref_row[0]:+.1f} | "
                  f"{only_ours} / {only_ref} | {ours_row[1]:.2f} | {ref_row[1]:.2f} | "
                  f"{ours_row[1] / ref_row[1]:.1f}x |", flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
