"""The executor contract, and the one policy for cells whose worker never answered.

Every executor takes the cells still to do and yields ``(cell, CellRecord)`` as cells finish, in any order. The
orchestrator (``bench.runner``), not the executor, records rows, so the cell keys, the results files and resuming
are the same whichever executor ran a cell, and a suite started with one executor can be finished with another.

Why rows travel back to the orchestrator instead of being written by the workers: Ray workers may live on machines
that do not share its file system, and one writer keeps logs, consolidation and the progress bar in one place. If
the orchestrator itself is killed, only cells that finished in the last instant (not yet received) are lost, and
those were never recorded, so a rerun computes them again.

Faults, the same for every executor that runs cells outside the orchestrator's process:
- a worker killed in the middle of a cell (SIGKILL, the kernel's OOM killer, a segfault): the cell is run again
  up to ``retries`` times, then recorded as an error row; the other cells go on (``after_crash``);
- a cell running longer than ``cell_timeout`` seconds: its worker is killed and the cell recorded as an error row,
  not retried: a slow cell would only be slow again (``timed_out``).
"""

from __future__ import annotations

import collections
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator

from bench.core.errors import UserError
from bench.infra import cache
from bench.results.schema import CellRecord
from bench.plan import registry
from bench.run.cell import failure_row
from bench.run.progress import RunProgress
from bench.plan.suite import Cell

__all__ = ["CellQueue", "Executor", "Result", "import_plugins", "worker_env"]

Result = tuple[Cell, CellRecord]


class CellQueue:
    """The cells an executor runs, handed out one at a time as a worker becomes free.

    The orchestrator decides at that moment whether this runner takes the cell (``take``: it holds the cell's
    claim, ``bench.infra.claims``); cells another runner holds are dropped from this queue, and the orchestrator
    comes back to them later. Taking cells one by one, not all at the start, lets several runners share the work.
    """

    def __init__(self, cells: Iterable[Cell], take: Callable[[Cell], bool] | None = None):
        self._cells = collections.deque(cells)
        self._again: collections.deque[Cell] = collections.deque()  # crashed cells: taken already
        self._take = take or (lambda cell: True)

    @classmethod
    def of(cls, cells: Iterable[Cell] | CellQueue) -> CellQueue:
        return cells if isinstance(cells, CellQueue) else cls(cells)

    def __len__(self) -> int:
        """At most this many more cells (some may go to other runners)."""
        return len(self._again) + len(self._cells)

    def popleft(self) -> Cell | None:
        """The next cell this runner takes, or None when none is left."""
        if self._again:
            return self._again.popleft()
        while self._cells:
            cell = self._cells.popleft()
            if self._take(cell):
                return cell
        return None

    def appendleft(self, cell: Cell) -> None:
        """Queue a cell that was taken already (its worker died) to run again first."""
        self._again.appendleft(cell)


class Executor(ABC):
    """Runs cells somewhere and yields each ``(cell, record)`` as it finishes."""

    def __init__(self, device: str | None = None, workers: int | None = None, cell_timeout: float | None = None,
                 retries: int = 1):
        if workers is not None and workers < 1:
            raise UserError(f"--workers {workers}: give at least 1")
        if cell_timeout is not None and cell_timeout <= 0:
            raise UserError(f"--cell-timeout {cell_timeout}: give a positive number of seconds")
        if retries < 0:
            raise UserError(f"--retries {retries}: give 0 or more")
        self.device, self.workers, self.cell_timeout, self.retries = device, workers, cell_timeout, retries

    @property
    def parallelism(self) -> int:
        """How many cells run at once (a hyperparameter search asks Optuna for that many trials per wave)."""
        return self.workers or os.cpu_count() or 1

    @abstractmethod
    def run(self, cells: list[Cell] | CellQueue, suite_name: str, progress: RunProgress) -> Iterator[Result]:
        """Run ``cells`` and yield ``(cell, record)`` for each one taken, failed ones included (as error rows).

        A ``CellQueue`` is read one cell at a time (``popleft``) when a worker is free, never all at once.
        """

    def after_crash(self, cell: Cell, why: str, attempts: int, elapsed: float, suite_name: str,
                    progress: RunProgress) -> Result | None:
        """A worker died while running ``cell`` (its ``attempts``-th attempt).

        Returns None when the cell should run again (the caller queues it), else the cell's error result.
        """
        if attempts <= self.retries:
            progress.note(f"worker {why} while running {cell.label()}; running it again "
                          f"(attempt {attempts + 1} of {self.retries + 1})")
            return None
        error = f"WorkerDied: the worker {why} while running this cell ({attempts} attempt(s))"
        return cell, CellRecord(failure_row(cell, suite_name, error, elapsed, self.device))

    def timed_out(self, cell: Cell, elapsed: float, suite_name: str) -> Result:
        """The error result of a cell stopped at the time limit."""
        error = f"CellTimeout: stopped after --cell-timeout {self.cell_timeout:g}s"
        return cell, CellRecord(failure_row(cell, suite_name, error, elapsed, self.device))


def worker_env() -> dict[str, str]:
    """Environment a worker needs to see what the orchestrator sees: the cache folder and the extra plugins."""
    env = {k: v for k, v in os.environ.items() if k.startswith("TRANSFERBENCH_")}
    if cache.override() is not None:  # --cache-dir lives in this process only; workers get it as a variable
        env["TRANSFERBENCH_CACHE"] = str(cache.override())
    return env


def import_plugins() -> None:
    """Warm a fresh worker up: plugin discovery imports every task and strategy (seconds), once per process."""
    registry.plugins("task")
    registry.plugins("strategy")
