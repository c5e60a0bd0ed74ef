"""User-facing errors: one clear line, no traceback, exit code 2."""


class UserError(Exception):
    """Bad input from the user (config, name, missing asset). The CLI prints ``str(err)`` and exits with 2."""


class SkipCell(Exception):
    """Raised by a plugin that cannot run a cell by design (e.g. zero-shot on a task without class names)."""
