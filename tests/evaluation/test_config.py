"""mocse_tf.evaluation.config: one EvalConfig for eval_c, eval_adv and make_c, their flags generated from it."""

import dataclasses

import pytest
from absl import flags

from mocse_tf.errors import UsageError
from mocse_tf.evaluation import config as eval_config
from mocse_tf.evaluation.config import EvalConfig


def test_each_tool_fills_in_its_own_defaults_and_shares_the_rest():
    base = EvalConfig(models=["m.keras"])
    c, adv = base.checked("eval_c"), base.checked("eval_adv")
    assert (c.num_examples, adv.num_examples) == (0, 1000)  # every image; the first 1000 for the attacks
    assert (c.output_dir, adv.output_dir) == ("runs/eval_c", "runs/eval_adv")
    assert c.batch_size == adv.batch_size == 250 and c.dataset is adv.dataset is None
    assert EvalConfig(num_examples=7, output_dir="o").checked("make_c").num_examples == 7
    with pytest.raises(UsageError, match="`output_dir` is required"):
        EvalConfig().checked("make_c")


def test_flags_are_generated_from_the_fields_with_their_defaults():
    for tool, fields in eval_config.TOOL_FIELDS.items():
        flag_values = flags.FlagValues()
        eval_config.define_flags(tool, flag_values)
        flag_values(["prog"])
        assert sorted(flag_values) == sorted(f.metadata["flag"] or f.name for f in dataclasses.fields(EvalConfig)
                                             if f.name in fields)
        parsed = eval_config.config_from_flags(tool, flag_values)
        assert all(getattr(parsed, name) == getattr(EvalConfig(), name) or
                   list(getattr(parsed, name)) == list(getattr(EvalConfig(), name)) for name in fields)
    flag_values = flags.FlagValues()
    eval_config.define_flags("eval_adv", flag_values)
    flag_values(["prog", "--model=a.keras", "--model=b.keras", "--batch_size=64", "--attacks=pgd3"])
    parsed = eval_config.config_from_flags("eval_adv", flag_values)
    assert (list(parsed.models), parsed.batch_size, parsed.attacks) == (["a.keras", "b.keras"], 64, "pgd3")


def test_autoattack_budget_defaults_are_the_standard_versions():
    """The light config modules (no TensorFlow at import) spell the budgets out; they must be the attacks' own."""
    from mocse_tf.attacks import autoattack
    from mocse_tf.experiments.table1 import Table1Config

    standard = (autoattack.SQUARE_QUERIES, autoattack.NUM_TARGETS)
    assert (EvalConfig.square_queries, EvalConfig.targets) == standard
    assert (Table1Config.square_queries, Table1Config.targets) == standard
