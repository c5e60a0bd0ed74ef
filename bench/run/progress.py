"""Progress over cells and epochs: rich bars on a terminal; in CI or a pipe, one plain line per cell and, for a long
cell, a heartbeat line per epoch (at most one every ``HEARTBEAT_S`` seconds), so a log shows the run is alive."""

from __future__ import annotations

import os
import sys
import time
from contextlib import AbstractContextManager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


HEARTBEAT_S = 30.0


def quiet() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or not sys.stderr.isatty()


class RunProgress(AbstractContextManager):
    def __init__(self, total_cells: int, enabled: bool | None = None):
        self.console = Console(stderr=True)
        self.fancy = (not quiet()) if enabled is None else enabled
        self.total = total_cells
        self.done = 0
        if self.fancy:
            self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=False)
            self.cells = self.bars.add_task("cells", total=total_cells)
            self.epochs = self.bars.add_task("epochs", total=1, visible=False)

    def __enter__(self):
        if self.fancy:
            self.bars.start()
        return self

    def __exit__(self, *exc):
        if self.fancy:
            self.bars.stop()
        return False

    def set_total(self, total: int) -> None:
        """A run with a search learns its cell count as it goes (recorded trials are skipped round by round)."""
        self.total = total
        if self.fancy:
            self.bars.update(self.cells, total=total)

    def start_cell(self, label: str, epochs: int) -> None:
        self.heartbeat = Heartbeat(label, epochs, f"[{self.done + 1}/{self.total}] ")
        if self.fancy:
            self.bars.update(self.epochs, description=f"  {label}", completed=0, total=max(epochs, 1), visible=True)

    def epoch(self, point: dict) -> None:
        if self.fancy:
            self.bars.update(self.epochs, advance=1)
        elif getattr(self, "heartbeat", None) is not None:
            self.heartbeat.epoch(point)

    def end_cell(self, label: str, status: str, detail: str) -> None:
        self.done += 1
        if self.fancy:
            self.bars.update(self.cells, advance=1)
            self.bars.update(self.epochs, visible=False)
            self.console.print(f"[{status}] {label}: {detail}", markup=False, highlight=False)
        else:
            print(f"[{self.done}/{self.total}] {status:7s} {label}: {detail}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


class Heartbeat:
    """Plain "still running" lines for one cell: after an epoch, if ``HEARTBEAT_S`` passed since the last line."""

    def __init__(self, label: str, epochs: int, prefix: str = "", every_s: float = HEARTBEAT_S):
        self.label, self.epochs, self.prefix, self.every_s = label, epochs, prefix, every_s
        self.last = time.monotonic()

    def epoch(self, point: dict) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        val = point.get("val_accuracy")
        score = f", val acc {val:.4f}" if isinstance(val, float) else ""
        print(f"{self.prefix}running {self.label}: epoch {point.get('epoch', '?')}/{self.epochs}{score}",
              file=sys.stderr, flush=True)
