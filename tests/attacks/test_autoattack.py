"""AutoAttack's cascade: each stage only on the examples still robust, cumulative robust accuracy, the per-example
worst case, the check of returned points; Square finding what APGD cannot on a model with masked gradients; and
the sanity checks of mocse_tf.evaluation.sanity."""

import numpy as np
import pytest
import tensorflow as tf

from mocse_tf import attacks
from mocse_tf.attacks import autoattack
from mocse_tf.errors import UsageError
from mocse_tf.evaluation import sanity
from tests.attacks.attack_models import NUM_CLASSES, synthetic_images, tiny_conv_net

EPS = 4 / 255


def _recording_stage(name, fool, seen):
    """A stage that records which examples it was given and fools those where fool(x) is True (moving them
    by eps/2 towards 1, or by 0.45, far outside the ball, where fool says 2)."""
    def build(forward, image_shape):
        def attack(x01, labels, seed):
            seen.append((name, x01.copy()))
            out = x01.copy()
            verdict = fool(x01)
            out[verdict == 1] = np.clip(out[verdict == 1] + EPS / 2, 0, 1)
            out[verdict == 2] = np.clip(out[verdict == 2] + 0.45, 0, 1)
            return out
        return attack
    return autoattack.Stage(name, build, objective=None)


def _brightness_model():
    """Class 1 when the mean pixel exceeds 0.5, else 0 (4 classes; 2 and 3 never win)."""
    def forward(x01):
        mean = tf.reduce_mean(tf.reshape(x01, [tf.shape(x01)[0], -1]), axis=1, keepdims=True)
        return {"logits": tf.concat([0.5 - mean, mean - 0.5, -tf.ones_like(mean), -tf.ones_like(mean)], axis=1) * 100}
    return forward


def test_cascade_attacks_only_robust_examples_and_keeps_the_worst_case():
    rng = np.random.default_rng(0)
    means = np.array([0.2, 0.499, 0.3, 0.4995, 0.7, 0.45, 0.4999, 0.1])
    x = np.clip(means[:, None, None, None] + rng.uniform(-1e-5, 1e-5, (8, 4, 4, 3)), 0, 1).astype(np.float32)
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 0])  # example 4 (mean 0.7) is wrong clean
    seen = []
    # Stage A fools examples 1 and 3 (close to the boundary); B would fool 1 again (it must not see it) and 6;
    # C "fools" 0 with a point outside the ball, which must be refused.
    near = lambda x: (x.reshape(len(x), -1).mean(1) > 0.498).astype(int)  # noqa: E731
    stages = [_recording_stage("A", lambda x: np.where(x.reshape(len(x), -1).mean(1) < 0.4997, near(x), 0), seen),
              _recording_stage("B", near, seen),
              _recording_stage("C", lambda x: np.where(x.reshape(len(x), -1).mean(1) < 0.25, 2, 0), seen)]
    result = autoattack.run_autoattack(_brightness_model(), x, labels, stages, eps=EPS, norm="linf", batch_size=3,
                                       log=lambda line: None)
    np.testing.assert_array_equal(result.clean_correct, [1, 1, 1, 1, 0, 1, 1, 1])
    np.testing.assert_array_equal(result.robust_after["A"], [1, 0, 1, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(result.robust_after["B"], [1, 0, 1, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(result.robust_after["C"], result.robust_after["B"])
    assert result.fooled_by == {"A": 2, "B": 1, "C": 0} and result.rejected["C"] == 2
    seen_counts = {name: sum(len(batch) for n, batch in seen if n == name) for name in "ABC"}
    assert seen_counts == {"A": 7, "B": 5, "C": 4}  # clean-wrong example 4 is never attacked
    np.testing.assert_array_equal(result.robust, result.robust_after["C"])
    # x_adv: the fooling point of fooled examples, the clean image elsewhere; all inside the ball.
    assert np.abs(result.x_adv - x).max() <= EPS + 1e-6
    np.testing.assert_array_equal(result.x_adv[result.robust], x[result.robust])
    assert any("C returned 2 points outside" in w for w in autoattack.masking_warnings(result, stages))


def test_standard_stages_in_the_reference_order():
    names = [s.name for s in autoattack.standard_stages(8 / 255, "linf", num_classes=10)]
    assert names == ["APGD-CE", "APGD-T", "FAB-T", "Square"]
    moc = [s.name for s in autoattack.standard_stages(0.5, "l2", num_classes=10, experts=True)]
    assert moc == names + ["APGD-MARGIN-CW", "APGD-T-MARGIN-DLR"]
    with pytest.raises(UsageError, match="square_queries must be an integer >= 1"):
        autoattack.standard_stages(8 / 255, "linf", num_classes=10, square_queries=0)
    with pytest.raises(UsageError, match="eps"):
        autoattack.standard_stages(8.0, "linf", num_classes=10)


def _masked(net):
    """The trained net behind an input quantisation whose gradient is cut: every input gradient is exactly 0."""
    inner = attacks.model_forward(net)

    def forward(x01):
        quantised = tf.stop_gradient(tf.round(x01 * 8.0) / 8.0)
        return inner(quantised + 0.0 * x01)
    return forward


def test_square_finds_what_apgd_cannot_on_masked_gradients(trained_net):
    net, x, labels = trained_net
    x, labels = x[:32], labels[:32]
    forward = _masked(net)
    eps = 12 / 255
    stages = [autoattack.apgd_stage(eps, "linf", steps=10), autoattack.square_stage(eps, "linf", queries=150)]
    result = autoattack.run_autoattack(forward, x, labels, stages, eps=eps, norm="linf", log=lambda line: None)
    assert result.fooled_by["Square"] > 2 * max(result.fooled_by["APGD-CE"], 1)
    warnings = autoattack.masking_warnings(result, stages)
    assert len(warnings) == 1 and "Square found adversarial examples" in warnings[0]
    assert sanity.zero_gradient_fraction(forward, x, labels) == 1.0
    assert sanity.zero_gradient_fraction(attacks.model_forward(net), x, labels) == 0.0



def test_square_stage_runs_the_schedule_it_is_given(trained_net):
    """AutoAttack's stage keeps the 10000-query schedule; rescale_schedule=True (ART's only schedule, used by
    bench/autoattack.py) reaches the stage's Square."""
    net, x, labels = trained_net
    forward = attacks.model_forward(net)
    x, labels = x[:16], labels[:16]
    found = {}
    for rescale in (False, True):
        built = autoattack.square_stage(EPS, "linf", queries=40, rescale_schedule=rescale).build(forward, x.shape[1:])
        direct = attacks.square_attack(forward, tf.constant(x), tf.constant(labels), eps=EPS, norm="linf",
                                       queries=40, seed=tf.constant([3, 0], tf.int64), rescale_schedule=rescale)
        found[rescale] = built(x, labels, 3)
        np.testing.assert_array_equal(found[rescale], direct.numpy())
    assert not np.array_equal(found[False], found[True])

def test_repeatability_flags_a_randomised_model(trained_net):
    net, x, _ = trained_net
    forward = attacks.model_forward(net)
    assert sanity.repeatability(forward, x[:8]) == (0.0, True)
    noisy = lambda x01: forward(x01 + tf.random.uniform(tf.shape(x01), -0.05, 0.05))  # noqa: E731
    largest, same = sanity.repeatability(noisy, x[:8])
    assert not same and largest > 1e-3 and "EOT" in sanity.randomness_warning(largest)


def test_fab_t_stage_runs_once_fab_lands(trained_net):
    pytest.importorskip("mocse_tf.attacks.fab")
    net, x, labels = trained_net
    stages = [autoattack.fab_t_stage(EPS, "linf", steps=5, num_targets=2)]
    result = autoattack.run_autoattack(attacks.model_forward(net), x[:16], labels[:16], stages, eps=EPS,
                                       norm="linf", log=lambda line: None)
    assert result.rejected["FAB-T"] == 0
    assert np.abs(result.x_adv - x[:16]).max() <= EPS + 1e-5


def test_repeated_runs_reuse_the_traced_graphs():
    # Each trace of a stage's graph calls the Python forward; running a traced graph does not. A second cascade
    # with equal stages on the same forward (other images, another batch size) must trace nothing.
    inner = attacks.model_forward(tiny_conv_net(seed=5))
    traces = []

    def forward(x01):
        traces.append(x01.shape)
        return inner(x01)

    x, _ = synthetic_images(10, seed=6)
    labels = np.argmax(inner(tf.constant(x))["logits"], axis=1)  # all clean-correct; eps too small to fool any
    settings = dict(num_classes=NUM_CLASSES, square_queries=3, apgd_steps=2, fab_steps=2, num_targets=2)

    def cascade(images, batch_size, **changed):
        stages = autoattack.standard_stages(1e-4, "linf", **{**settings, **changed})
        return autoattack.run_autoattack(forward, images, labels[:len(images)], stages, eps=1e-4, norm="linf",
                                         batch_size=batch_size, log=lambda line: None)

    first = cascade(x, 10)
    assert list(first.robust_after) == ["APGD-CE", "APGD-T", "FAB-T", "Square"] and first.robust.all()
    traced = len(traces)
    assert traced >= 5  # the logits graph and the four stages
    cascade(x[:7], 4)
    assert len(traces) == traced
    cascade(x[:7], 4, square_queries=4)  # other settings: only Square is traced anew (its clean logits, start and
    assert 0 < len(traces) - traced <= 3  # loop body each call forward once)
