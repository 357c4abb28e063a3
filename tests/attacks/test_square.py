"""Square attack: its p schedule and window sizes against a re-statement of the reference's, the L-inf stripe and
L2 tile starts, each proposal step against a NumPy re-statement, margins that never rise, the constraints,
determinism, graph mode, and robust accuracy on a model whose input gradient is exactly zero."""

import numpy as np
import pytest
import tensorflow as tf

from tests.attacks.attack_models import synthetic_images, tiny_conv_net
from mocse_tf import attacks
from mocse_tf.attacks import square
from mocse_tf.errors import UsageError


def _reference_p(iteration, queries, p_init, rescale):
    """The reference's piecewise p_selection, written out as its if-chain."""
    it = int(iteration / queries * 10000) if rescale else iteration
    if 10 < it <= 50:
        return p_init / 2
    if 50 < it <= 200:
        return p_init / 4
    if 200 < it <= 500:
        return p_init / 8
    if 500 < it <= 1000:
        return p_init / 16
    if 1000 < it <= 2000:
        return p_init / 32
    if 2000 < it <= 4000:
        return p_init / 64
    if 4000 < it <= 6000:
        return p_init / 128
    if 6000 < it <= 8000:
        return p_init / 256
    if 8000 < it:
        return p_init / 512
    return p_init


@pytest.mark.parametrize("queries", [5000, 1000, 37])
@pytest.mark.parametrize("rescale", [True, False])
def test_p_schedule_is_the_references(queries, rescale):
    schedule = square.square_p_schedule(queries, 0.8, rescale)
    assert len(schedule) == queries
    assert schedule == [_reference_p(i, queries, 0.8, rescale) for i in range(queries)]
    probes = {0: 0.8, 5: 0.8, 6: 0.4, 25: 0.4, 26: 0.2, 100: 0.2, 101: 0.1, 250: 0.1, 251: 0.05, 500: 0.05,
              501: 0.025, 1000: 0.025, 1001: 0.0125, 2000: 0.0125, 2001: 0.00625, 3000: 0.00625, 3001: 0.003125,
              4000: 0.003125, 4001: 0.0015625, 4999: 0.0015625}
    if queries == 5000 and rescale:  # iteration i is the schedule's 2i
        for iteration, p in probes.items():
            assert schedule[iteration] == pytest.approx(p, rel=1e-12), iteration
    if queries == 5000 and not rescale:  # AutoAttack's standard run stops at p_init / 128
        assert schedule[10] == 0.8 and schedule[11] == 0.4 and schedule[4001] == 0.8 / 128 == schedule[-1]
    if queries == 1000 and rescale:  # iteration i is the schedule's 10i
        assert schedule[1] == 0.8 and schedule[2] == 0.4 and schedule[801] == 0.8 / 512 == schedule[-1]


def test_window_sizes():
    p = [0.8, 0.4, 0.05, 0.8 / 64, 0.8 / 512]
    # round(sqrt(p * 1024)): 28.6 -> 29, 20.2 -> 20, 7.2 -> 7, 3.6 -> 4, 1.3 -> 1; L2: odd and >= 3.
    assert square.square_window_sizes(p, 32, 32, 3, "linf") == [29, 20, 7, 4, 1]
    assert square.square_window_sizes(p, 32, 32, 3, "l2") == [29, 21, 7, 5, 3]
    # Capped at the image size: sqrt(48) = 6.9 -> 7 -> 6; sqrt(48 / 3) = 4.
    assert square.square_window_sizes([1.0, 1 / 3], 6, 8, 1, "linf") == [6, 4]
    assert square.square_window_sizes([1.0], 4, 4, 3, "l2") == [4]


def test_linf_start_is_vertical_stripes():
    x = tf.fill([4, 16, 12, 3], 0.5)
    eps = 0.1
    start = square.linf_stripes_start(x, eps, tf.constant([3, 1], tf.int64)).numpy()
    delta = start - 0.5
    np.testing.assert_allclose(np.abs(delta), eps, rtol=1e-5)  # every entry at +-eps: in the ball, on its corner
    np.testing.assert_array_equal(delta, np.broadcast_to(delta[:, :1], delta.shape))  # constant down each column
    signs = np.sign(delta[:, 0])  # [B, W, C]
    assert 0.3 < np.mean(signs > 0) < 0.7
    assert len({signs[b].tobytes() for b in range(4)}) == 4  # drawn per example
    assert np.any(signs[:, :, 0] != signs[:, :, 1])  # and per channel
    clipped = square.linf_stripes_start(tf.zeros([2, 8, 8, 3]), eps, tf.constant([0, 0], tf.int64)).numpy()
    assert clipped.min() == 0.0 and clipped.max() <= eps + 1e-7


def _reference_rings(rows, cols):
    """The reference's concentric rectangles, as its loop: the k-th rectangle around the centre spans k pixels
    each way and adds 1 / (k + 1)^2."""
    rings = np.zeros([rows, cols])
    ci, cj = rows // 2, cols // 2
    for k in range(max(rows // 2 + 1, cols // 2 + 1)):
        rings[max(ci - k, 0):min(ci + k + 1, rows), max(cj - k, 0):min(cj + k + 1, cols)] += 1.0 / (k + 1) ** 2
    return rings / np.sqrt(np.sum(rings ** 2)) if rows else rings


def _reference_pattern(side):
    pattern = np.concatenate([_reference_rings(side // 2, side), -_reference_rings(side - side // 2, side)])
    return pattern / np.sqrt(np.sum(pattern ** 2))


@pytest.mark.parametrize("side", [1, 2, 3, 6, 7, 29])
def test_l2_pattern(side):
    np.testing.assert_allclose(square.square_l2_pattern(side), _reference_pattern(side), atol=1e-12)


def test_l2_start_is_tiled_and_on_the_sphere():
    x = tf.fill([3, 32, 32, 3], 0.5)
    eps = 0.5
    start = square.l2_tiles_start(x, eps, tf.constant([5, 2], tf.int64)).numpy()
    delta = start - 0.5
    np.testing.assert_allclose(np.sqrt(np.sum(delta ** 2, axis=(1, 2, 3))), eps, rtol=1e-5)
    # 32 // 5 = 6: a 5 x 5 grid of 6 x 6 tiles from pixel 1; the border rows and columns stay 0.
    assert np.all(delta[:, 0] == 0) and np.all(delta[:, 31] == 0) and np.all(delta[:, :, 0] == 0)
    pattern = _reference_pattern(6)
    for b in range(3):
        for top in range(1, 31, 6):
            for left in range(1, 31, 6):
                for c in range(3):
                    tile = delta[b, top:top + 6, left:left + 6, c]
                    scale = np.sqrt(np.sum(tile ** 2))
                    assert min(np.abs(tile / scale - s * p).max() for s in (1, -1) for p in (pattern, pattern.T)) < 1e-5


def _windows(top, left, side, shape):
    mask = np.zeros(shape)
    for b in range(shape[0]):
        mask[b, top[b]:top[b] + side, left[b]:left[b] + side] = 1.0
    return mask


def test_linf_proposal_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(3, 10, 9, 2)).astype(np.float32)
    eps = 0.05
    x_best = np.clip(x + eps * np.sign(rng.normal(size=x.shape)), 0, 1).astype(np.float32)
    top, left, side = np.array([0, 3, 6]), np.array([5, 0, 2]), 4
    signs = np.array([[1, -1], [-1, -1], [1, 1]], np.float32)
    got = square.linf_proposal(tf.constant(x), tf.constant(x_best), eps, tf.constant(side), tf.constant(top, tf.int32),
                               tf.constant(left, tf.int32), tf.constant(signs)).numpy()
    want = x_best + _windows(top, left, side, x.shape) * 2 * eps * signs[:, None, None, :]
    want = np.clip(np.clip(want, x - eps, x + eps), 0, 1)
    np.testing.assert_allclose(got, want, atol=1e-7)
    assert np.any(got != x_best)


# Window corners (top, left, top2, left2) of three examples: apart, and overlapping (the second window partly or
# wholly inside the first).
_L2_WINDOWS = {"apart": ([0, 7, 3], [2, 1, 7], [6, 0, 3], [4, 7, 1]),
               "overlapping": ([2, 4, 0], [2, 6, 7], [4, 4, 2], [5, 6, 4])}


@pytest.mark.parametrize("windows", sorted(_L2_WINDOWS))
def test_l2_proposal_matches_numpy(windows):
    rng = np.random.default_rng(1)
    n, h, w, c = 3, 12, 12, 3
    x = rng.uniform(0.2, 0.8, size=(n, h, w, c))
    eps = 0.7
    delta0 = rng.normal(size=x.shape)
    x_best = x + eps * delta0 / np.sqrt(np.sum(delta0 ** 2, axis=(1, 2, 3), keepdims=True))
    side = 5
    top, left, top2, left2 = (np.array(corners) for corners in _L2_WINDOWS[windows])
    signs = np.array([[1, -1, 1], [-1, -1, 1], [1, 1, -1]], np.float64)
    transpose = np.array([False, True, False])
    got = square.l2_proposal(
        tf.constant(x, tf.float32), tf.constant(x_best, tf.float32), eps, tf.constant(side),
        *[tf.constant(v, tf.int32) for v in (top, left, top2, left2)], tf.constant(signs, tf.float32),
        tf.constant(transpose)).numpy()

    # The reference's window update, one example at a time.
    want = np.zeros_like(x)
    for b in range(n):
        delta = x_best[b] - x[b]
        w1 = (slice(top[b], top[b] + side), slice(left[b], left[b] + side))
        w2 = (slice(top2[b], top2[b] + side), slice(left2[b], left2[b] + side))
        union = np.zeros([h, w, 1])
        union[w1] = 1
        union[w2] = 1
        pattern = _reference_pattern(side).T if transpose[b] else _reference_pattern(side)
        new = pattern[:, :, None] * signs[b] + delta[w1] / (1e-12 + np.sqrt(np.sum(delta[w1] ** 2, axis=(0, 1))))
        room = max(eps ** 2 - np.sum(delta ** 2), 0) / c + np.sum((delta * union) ** 2, axis=(0, 1))
        new = new / (1e-12 + np.sqrt(np.sum(new ** 2, axis=(0, 1)))) * np.sqrt(room)
        delta = delta.copy()
        delta[w2] = 0
        delta[w1] = new
        want[b] = np.clip(x[b] + eps * delta / np.sqrt(np.sum(delta ** 2)), 0, 1)
    np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.fixture(scope="module")
def net_and_batch():
    x, _ = synthetic_images(12, seed=4)
    forward = attacks.model_forward(tiny_conv_net(seed=3))
    # An untrained net: attack its own predictions, so every example starts correctly classified.
    return forward, x, np.argmax(forward(tf.constant(x))["logits"], axis=1)


def _margin(forward, x, labels):
    return square.margin_and_loss(forward(tf.constant(x))["logits"], labels)[0].numpy()


def _graph_square(forward, **settings):
    return tf.function(lambda x, y: square.square_attack(forward, x, y, **settings), autograph=False)


@pytest.mark.parametrize("norm, eps", [("linf", 4 / 255), ("l2", 0.3)])
def test_margin_never_rises_and_constraints_hold(net_and_batch, norm, eps):
    forward, x, labels = net_and_batch
    # Without rescaling, a longer budget repeats a shorter one's iterations first, and a proposal is kept only if
    # it lowers the margin: the margin after more queries is never higher.
    margins, points = [], []
    for queries in (1, 20, 150):
        adv = _graph_square(forward, eps=eps, norm=norm, queries=queries, seed=7, rescale_schedule=False)(x, labels)
        adv = adv.numpy()
        delta = (adv - x).reshape(len(x), -1)
        size = np.abs(delta).max(axis=1) if norm == "linf" else np.sqrt(np.sum(delta ** 2, axis=1))
        assert np.all(size <= eps * (1 + 1e-5)) and adv.min() >= 0 and adv.max() <= 1
        margins.append(_margin(forward, adv, labels))
        points.append(adv)
    clean = _margin(forward, x, labels)
    # Only examples not yet fooled are queried further: a fooled example keeps its point.
    fooled = margins[1] <= 0
    assert 0 < np.sum(fooled) < len(x)
    np.testing.assert_array_equal(points[2][fooled], points[1][fooled])
    assert np.all(margins[1] <= margins[0] + 1e-4) and np.all(margins[2] <= margins[1] + 1e-4)
    assert np.mean(margins[2]) < np.mean(margins[0]) - 0.1 * np.std(clean)
    if norm == "l2":  # the L2 attack keeps its perturbation on the eps sphere (images in [0.2, 0.8] rarely clip)
        assert np.median(size) > 0.99 * eps


def test_seeded_and_the_same_in_graph_mode(net_and_batch):
    forward, x, labels = net_and_batch
    settings = dict(eps=8 / 255, queries=30, seed=[1, 2])
    first = square.square_attack(forward, x, labels, **settings).numpy()
    again = square.square_attack(forward, x, labels, **settings).numpy()
    np.testing.assert_array_equal(first, again)
    other = square.square_attack(forward, x, labels, **{**settings, "seed": [1, 3]}).numpy()
    assert np.any(other != first)
    graph = tf.function(
        lambda x, y: square.square_attack(forward, x, y, **settings), autograph=False,
        input_signature=[tf.TensorSpec([None, 32, 32, 3]), tf.TensorSpec([None], tf.int64)])(x, labels).numpy()
    # The same draws; a proposal whose margin ties to rounding could go either way: allow one example to differ.
    assert np.sum(np.abs(graph - first).max(axis=(1, 2, 3)) > 1e-6) <= 1


def test_restarts_keep_what_the_first_run_found(net_and_batch):
    forward, x, labels = net_and_batch
    one = _graph_square(forward, eps=8 / 255, queries=40, seed=3)(x, labels).numpy()
    two = _graph_square(forward, eps=8 / 255, queries=40, seed=3, restarts=2)(x, labels).numpy()
    fooled = _margin(forward, one, labels) <= 0
    np.testing.assert_array_equal(two[fooled], one[fooled])
    assert np.all(_margin(forward, two, labels) <= _margin(forward, one, labels) + 1e-5)


def test_targeted_square_reaches_the_target(net_and_batch):
    forward, x, labels = net_and_batch
    logits = forward(tf.constant(x))["logits"]
    targets = attacks.ranked_targets(logits, 1)
    adv = _graph_square(forward, eps=0.15, queries=100, seed=0, targets=targets)(x, labels)
    predicted = np.argmax(forward(adv)["logits"], axis=1)
    assert np.mean(predicted == targets.numpy()) >= 0.75


def test_square_breaks_a_model_with_zero_input_gradients(trained_net):
    # Inputs quantised to 256 levels, with an input gradient of exactly 0: APGD cannot move, the random search
    # of Square can.
    net, x, labels = trained_net
    forward = attacks.model_forward(net)

    def masked(x01):
        return forward(x01 * 0.0 + tf.stop_gradient(tf.round(x01 * 255.0) / 255.0))

    def accuracy(adv):
        return np.mean(np.argmax(masked(tf.constant(adv))["logits"], axis=1) == labels)

    eps = 8 / 255
    assert accuracy(x) >= 0.95
    assert accuracy(attacks.apgd(forward, x, labels, eps=eps, steps=10)) <= 0.1  # the network is not robust
    apgd_masked = accuracy(attacks.apgd(masked, x, labels, eps=eps, steps=10))
    square_masked = accuracy(_graph_square(masked, eps=eps, queries=300, seed=0)(x, labels))
    assert apgd_masked >= 0.9
    assert square_masked <= apgd_masked - 0.15  # measured: 1.0 and 0.70


@pytest.mark.parametrize("settings, message", [
    ({"eps": 1.5}, "eps"), ({"eps": -0.1}, "eps"), ({"queries": 0}, "queries"), ({"restarts": 0}, "restarts"),
    ({"p_init": 0.0}, "p_init"), ({"p_init": 1.5}, "p_init"), ({"norm": "l1"}, "norm"),
])
def test_bad_settings_raise(settings, message):
    forward = attacks.model_forward(tiny_conv_net())
    x, labels = synthetic_images(2, seed=0)
    with pytest.raises(UsageError, match=message):
        square.square_attack(forward, x, labels, **{"eps": 0.1, **settings})


def test_bad_images_raise():
    forward = lambda x: {"logits": tf.reshape(x, [tf.shape(x)[0], -1])[:, :3]}  # noqa: E731
    with pytest.raises(UsageError, match="H, W, C"):
        square.square_attack(forward, np.zeros([2, 10], np.float32), [0, 1], eps=0.1)
    with pytest.raises(UsageError, match="5 x 5"):
        square.square_attack(forward, np.zeros([2, 4, 4, 1], np.float32), [0, 1], eps=0.1, norm="l2")


def test_targets_outside_the_classes_raise():
    forward = attacks.model_forward(tiny_conv_net())
    x, labels = synthetic_images(2, seed=0)
    with pytest.raises(UsageError, match="target classes must lie in 0 .. 3"):
        square.square_attack(forward, x, labels, eps=0.1, queries=2, targets=[1, 4])


def test_examples_misclassified_at_the_start_are_not_attacked():
    # Also: a network that fails on an empty batch (Keras' Conv2D here) is never called with one.
    forward = attacks.model_forward(tiny_conv_net())
    x, _ = synthetic_images(4, seed=0)
    labels = np.argmax(forward(tf.constant(x))["logits"], axis=1)
    wrong = (labels + 1) % 4
    np.testing.assert_array_equal(square.square_attack(forward, x, wrong, eps=0.1, queries=3, restarts=2), x)
    labels[:2] = wrong[:2]
    adv = square.square_attack(forward, x, labels, eps=0.1, queries=3).numpy()
    np.testing.assert_array_equal(adv[:2], x[:2])
    assert np.all(np.any(adv[2:] != x[2:], axis=(1, 2, 3)))
