"""Evaluation settings checked before any work: non-finite numbers are refused, settings that do nothing in the
chosen mode are named (the tools print them as warnings)."""

import pytest

from mocse_tf.errors import UsageError
from mocse_tf.evaluation.config import EvalConfig


@pytest.mark.parametrize("tool, settings, message", [
    ("eval_adv", dict(eps=float("nan")), "`eps` must be a finite number, got nan"),
    ("eval_adv", dict(bce_weight=float("inf")), "`bce_weight` must be a finite number, got inf"),
    ("eval_adv", dict(bce_weight=-1.0), "`bce_weight` must be >= 0, got -1.0"),
])
def test_non_finite_and_negative_numbers_are_refused(tool, settings, message):
    with pytest.raises(UsageError, match=message):
        EvalConfig(models=["m.keras"], **settings).checked(tool)


def test_settings_that_do_nothing_are_named():
    assert EvalConfig(source="generate", dataset="synthetic").inactive_settings(
        "eval_c", {"c_dir", "local_dir", "seed"}) == [("c_dir", "source", "generate"),
                                                      ("local_dir", "dataset", "synthetic")]
    assert EvalConfig(source="folder").inactive_settings("eval_c", {"c_dir"}) == []
    assert EvalConfig(attacks="pgd20,apgd_ce").inactive_settings("eval_adv", {"bce_weight"}) == [
        ("bce_weight", "attacks", "pgd20,apgd_ce")]
    assert EvalConfig(attacks="default").inactive_settings("eval_adv", {"bce_weight"}) == []
    assert EvalConfig(dataset="synthetic").inactive_settings("make_c", {"data_dir"}) == [
        ("data_dir", "dataset", "synthetic")]
