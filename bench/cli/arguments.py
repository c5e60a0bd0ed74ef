"""Argument checks the CLI's commands share (one module, so command modules never import ``bench.cli.main``)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.core.errors import UserError

__all__ = ["positive_float", "positive_int", "writable_dir"]


def writable_dir(path: Path) -> Path:
    """Create ``path`` (a results directory) or say in one line why it cannot be one."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A probe file of this process's own: runners started together on one directory must not remove each
        # other's probe (a shared name made the second runner fail with "No such file or directory").
        with tempfile.NamedTemporaryFile(dir=path, prefix=".transferbench-write-test-"):
            pass
    except OSError as err:
        raise UserError(f"--results {path}: cannot write there ({err.strerror or type(err).__name__}); "
                        "give a writable directory") from None
    return path


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give at least 1")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: give a positive number of seconds")
    return value
