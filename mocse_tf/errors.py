"""Errors a user can fix: command-line tools print their message alone and exit non-zero."""


class UsageError(ValueError):
    """A bad name, value, path or data folder; the message says what was wrong and how to fix it."""


def check_choice(what, value, choices):
    """`value` if it is one of `choices`, else a UsageError showing the value received and the valid choices."""
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, choices))}")
    return value
