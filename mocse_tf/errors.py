"""Errors a user can fix: command-line tools print their message alone and exit non-zero.

Library code names a setting in a message by its Python name in backticks (`output_dir`, `overwrite`), the
keyword a Python caller passes; it never speaks of command-line flags. The CLI layer (`mocse_tf/cli.py`) shows
each such name as the tool's flag (`--output_dir`) through `UsageError.render`.
"""

import re

_SETTING = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


class UsageError(ValueError):
    """A bad name, value, path or data folder; the message says what was wrong and how to fix it."""

    def render(self, flag_of=None):
        """The message with every `setting` shown as `--flag` (flag_of maps a setting to its flag name)."""
        flag_of = flag_of or {}
        return _SETTING.sub(lambda m: "--" + flag_of.get(m.group(1), m.group(1)), str(self))


def describe_error(err):
    """`TypeName: the first line of its message` of an exception, for a one-line error that quotes it."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def check_choice(what, value, choices):
    """`value` if it is one of `choices`, else a UsageError showing the value received and the valid choices."""
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, choices))}")
    return value
