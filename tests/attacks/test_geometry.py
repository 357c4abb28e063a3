"""Projections, ascent directions, random starts and seeds of the attacks."""

import numpy as np
import pytest
import tensorflow as tf

from mocse_tf.attacks import geometry, starts
from mocse_tf.errors import UsageError


def test_linf_projection_clips_to_ball_then_to_unit_box():
    x = tf.constant([[0.5, 0.5, 0.99, 0.02]])
    x_adv = tf.constant([[0.6, 0.47, 1.2, -0.3]])
    np.testing.assert_allclose(geometry.project(x_adv, x, 0.05, "linf"), [[0.55, 0.47, 1.0, 0.0]], atol=1e-7)


def test_l2_projection_rescales_onto_ball_then_clips():
    x = tf.constant([[0.5, 0.5], [0.5, 0.5]])
    x_adv = tf.constant([[0.5 + 0.3, 0.5 + 0.4], [0.6, 0.5]])  # delta norms 0.5 and 0.1
    np.testing.assert_allclose(geometry.project(x_adv, x, 0.25, "l2"), [[0.65, 0.7], [0.6, 0.5]], atol=1e-7)
    # Clipping to [0, 1] after rescaling keeps the point inside the ball.
    corner = geometry.project(tf.constant([[1.5, 0.5]]), tf.constant([[0.9, 0.5]]), 0.5, "l2")
    np.testing.assert_allclose(corner, [[1.0, 0.5]])


def test_ascent_directions_have_unit_norm():
    grad = tf.constant([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(geometry.ascent_direction(grad, "linf"), [[1, -1, 0], [0, 0, 0]])
    np.testing.assert_allclose(geometry.ascent_direction(grad, "l2"), [[0.6, -0.8, 0.0], [0, 0, 0]], atol=1e-7)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_starts_lie_in_the_ball(norm):
    x = tf.fill([64, 8, 8, 3], 0.5)
    eps = 0.1
    seed = starts.as_seed(3)
    uniform = starts.uniform_start(x, eps, norm, seed) - x
    sphere = starts.sphere_start(x, eps, norm, seed) - x
    size = geometry.linf_norm if norm == "linf" else geometry.l2_norm
    assert np.all(size(uniform).numpy() <= eps * (1 + 1e-6))
    np.testing.assert_allclose(size(sphere), eps, rtol=1e-5)
    if norm == "linf":  # uniform per entry: entries spread over the whole interval
        assert uniform.numpy().min() < -0.09 and uniform.numpy().max() > 0.09


def test_seeds_are_reproducible_and_restarts_differ():
    x = tf.zeros([2, 5])
    a = starts.uniform_start(x, 1.0, "linf", starts.as_seed(7))
    b = starts.uniform_start(x, 1.0, "linf", starts.as_seed([7, 0]))
    np.testing.assert_array_equal(a, b)
    c = starts.uniform_start(x, 1.0, "linf", starts.derived_seed(starts.as_seed(7), 1))
    assert not np.allclose(a, c)


def test_bad_seed_and_norm_are_usage_errors():
    with pytest.raises(UsageError, match="seed"):
        starts.as_seed([1, 2, 3])
    with pytest.raises(UsageError, match="seed"):
        starts.as_seed(True)
    with pytest.raises(UsageError, match="unknown norm"):
        geometry.check_norm("l1")
