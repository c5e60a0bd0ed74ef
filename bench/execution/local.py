"""The default executor: one cell after another in the orchestrator's own process."""

from __future__ import annotations

from collections.abc import Iterator

from bench.execution.base import CellQueue, Executor, Result
from bench.infra.provenance import pick_device
from bench.run.cell import run_cell
from bench.run.progress import RunProgress
from bench.plan.suite import Cell


class LocalExecutor(Executor):
    """One cell after another in this process (the progress bar shows epochs too).

    It has no time limit: a cell inside the orchestrator's own process cannot be stopped safely, so
    ``make_executor`` hands ``local`` with ``--cell-timeout`` to a one-worker process pool instead.
    """

    parallelism = 1

    def run(self, cells: list[Cell] | CellQueue, suite_name: str, progress: RunProgress) -> Iterator[Result]:
        dev = pick_device(self.device)
        queue = CellQueue.of(cells)
        while (cell := queue.popleft()) is not None:
            progress.start_cell(cell.label(), int(cell.params.get("epochs", 1)))
            yield cell, run_cell(cell, suite_name, dev, progress)
