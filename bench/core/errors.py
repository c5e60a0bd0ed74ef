"""User-facing errors: one clear line, no traceback, exit code 2."""


class UserError(Exception):
    """Bad input from the user (config, name, missing asset). The CLI prints ``str(err)`` and exits with 2."""


class SkipCell(Exception):
    """Raised by a plugin that cannot run a cell by design (e.g. zero-shot on a task without class names)."""


class TrialPruned(Exception):
    """Raised from a cell's per-epoch callback to stop its training early (a race trial that a pruner or the
    wall-clock budget stopped). The cell becomes a row with ``status="pruned"``: recorded, not a failure.

    Attributes:
        curve: the validation points the trial reached (the training loop's curve so far, epoch 0 first).
        reason: one line saying who stopped it and why (shown in the row's ``error`` column).
    """

    def __init__(self, reason: str, curve: list[dict] | None = None):
        super().__init__(reason)
        self.reason, self.curve = reason, list(curve or [])


def first_line(err: BaseException) -> str:
    """``Type: first line of the message``: what an error row shows (the traceback goes to the log file)."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
