"""Errors a user can fix: command-line tools print their message alone and exit non-zero."""


class UsageError(ValueError):
    """A bad name, value, path or data folder; the message says what was wrong and how to fix it."""
