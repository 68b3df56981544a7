"""The error the trainers report as one line (bad flags, missing data, no TPU), not a traceback."""


class UsageError(ValueError):
    """A run that cannot start as asked; the message names the argument, value and what is
    allowed."""
