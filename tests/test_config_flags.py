"""mocse_tf.config_flags: absl flags generated from a dataclass's fields, and the dataclass filled from them."""

import dataclasses

from absl import flags

from mocse_tf import config_flags
from mocse_tf.config_flags import setting


@dataclasses.dataclass
class Example:
    paths: tuple = setting((), "multi_string", "A path; repeat the flag.", flag="path")
    size: int | None = setting(None, "integer", "A size.")
    rate: float = setting(0.5, "float", "A rate.")
    levels: tuple = setting((1, 2), "list", "Levels.")
    quiet: bool = setting(False, "bool", "Say less.")


def test_flags_carry_each_fields_name_kind_default_and_help():
    flag_values = flags.FlagValues()
    config_flags.define_flags(Example, flag_values=flag_values)
    flag_values(["prog"])
    assert sorted(flag_values) == ["levels", "path", "quiet", "rate", "size"]
    assert flag_values["rate"].help == "A rate." and flag_values["levels"].default == ["1", "2"]
    assert config_flags.config_from_flags(Example, flag_values=flag_values) == Example(paths=[], levels=["1", "2"])
    # Listed under the module that declares the class, as if that module had defined them.
    assert [f.name for f in flag_values.flags_by_module_dict()[__name__]] == ["path", "size", "rate", "levels",
                                                                              "quiet"]
    assert config_flags.flag_of(Example) == {"paths": "path"}


def test_parsed_values_fill_the_fields_and_names_select_a_subset():
    flag_values = flags.FlagValues()
    config_flags.define_flags(Example, ("paths", "rate", "quiet"), flag_values)
    flag_values(["prog", "--path=a", "--path=b", "--rate=0.25", "--quiet"])
    assert sorted(flag_values) == ["path", "quiet", "rate"]
    parsed = config_flags.config_from_flags(Example, ("paths", "rate", "quiet"), flag_values)
    assert (parsed.paths, parsed.rate, parsed.quiet, parsed.size) == (["a", "b"], 0.25, True, None)


def test_the_training_and_search_settings_round_trip_through_their_flags():
    from mocse_tf.training.config import TrainConfig
    from mocse_tf.training.tune import SearchSettings

    flag_values = flags.FlagValues()
    config_flags.define_flags(TrainConfig, flag_values=flag_values)
    config_flags.define_flags(SearchSettings, flag_values=flag_values)
    flag_values(["prog"])
    assert config_flags.config_from_flags(TrainConfig, flag_values=flag_values) == TrainConfig()
    search = config_flags.config_from_flags(SearchSettings, flag_values=flag_values)
    assert search.validate(TrainConfig()) == SearchSettings()  # the list flags' strings become the integers
    flag_values(["prog", "--arch=preact_resnet18", "--noexport", "--adv_eps=0.5", "--width_choices=4,8"])
    parsed = config_flags.config_from_flags(TrainConfig, flag_values=flag_values)
    assert (parsed.arch, parsed.export, parsed.adv_eps) == ("preact_resnet18", False, 0.5)
    search = config_flags.config_from_flags(SearchSettings, flag_values=flag_values)
    assert search.validate(parsed).width_choices == (4, 8)
