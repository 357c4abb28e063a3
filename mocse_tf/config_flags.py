"""absl flags generated from a configuration dataclass (TrainConfig, EvalConfig, ...): a field declared with
`setting` carries its flag's kind and help text, so a setting, its flag, its default and its help exist once.
`inactive_settings` finds the settings a user gave that a configuration ignores (the tools warn about them)."""

import dataclasses


def setting(default, kind, help_text, flag=None):
    """A dataclass field that is also a flag. kind: the absl DEFINE_<kind> (string, integer, float, bool, list,
    multi_string); flag: the flag's name where it differs from the field's (e.g. --model for `models`)."""
    return dataclasses.field(default=default, metadata={"kind": kind, "help": help_text, "flag": flag})


def flag_name(field):
    return field.metadata["flag"] or field.name


def flag_of(config_class):
    """{field name: flag name} for the fields whose flag is spelt differently (cli.run's `flag_of`)."""
    return {f.name: flag_name(f) for f in dataclasses.fields(config_class) if flag_name(f) != f.name}


def _settings(config_class, names):
    return [f for f in dataclasses.fields(config_class) if names is None or f.name in names]


def define_flags(config_class, names=None, flag_values=None):
    """Defines one absl flag per field of `config_class` (those in `names`, default all), registered under the
    module that declares the class, so --helpfull lists them there."""
    from absl import flags

    flag_values = flags.FLAGS if flag_values is None else flag_values
    for field in _settings(config_class, names):
        kind, default = field.metadata["kind"], field.default
        if kind in ("list", "multi_string"):  # absl parses list flags to lists of strings
            default = [str(value) for value in default]
        getattr(flags, f"DEFINE_{kind}")(flag_name(field), default, field.metadata["help"], flag_values=flag_values,
                                         module_name=config_class.__module__)


def config_from_flags(config_class, names=None, flag_values=None):
    """A `config_class` holding the parsed values of the flags that `define_flags` defined."""
    from absl import flags

    flag_values = flags.FLAGS if flag_values is None else flag_values
    return config_class(**{f.name: flag_values[flag_name(f)].value for f in _settings(config_class, names)})


def inactive_settings(config, given, rules):
    """The settings among `given` (names set by the user) that do nothing in `config`, as (setting, deciding
    setting, its value) triples, in the order of `rules`: (settings, deciding setting, whether they do nothing)."""
    return [(name, decider, getattr(config, decider)) for names, decider, idle in rules if idle
            for name in names if name in given]
