"""The one loop that records rows, shared by ``transferbench run`` (``bench.runner``) and ``transferbench estimate``
(``bench.run.estimate``): which work items still need a row, and what happens to each row that comes back.

A work item is anything with a ``key`` (its row file, ``cells/<key>.json``) and a ``label()`` for the console: a
suite's cell or an estimate. Resume semantics live here so both commands keep the same ones: a recorded row is
skipped, ``force`` recomputes it, and an error row is computed again where the caller retries errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bench import results
from bench.infra.claims import Claims
from bench.results.schema import CellRecord
from bench.run.progress import RunProgress

__all__ = ["WorkItem", "pending", "record_rows"]

CONSOLIDATE_EVERY_S = 1.0


class WorkItem(Protocol):
    key: str

    def label(self) -> str: ...


class Counts(Protocol):
    ran: int
    failed: int


Item = TypeVar("Item", bound=WorkItem)


def pending(items: Iterable[Item], done: dict[str, dict[str, Any]], force: bool = False,
            retry_errors: bool = False) -> list[Item]:
    """The items that need a row: unrecorded ones, recorded errors when ``retry_errors``, every item when ``force``."""
    return [item for item in items
            if force or item.key not in done or (retry_errors and done[item.key]["status"] == "error")]


def record_rows(finished: Iterable[tuple[WorkItem, CellRecord]], results_dir: Path, done: dict[str, dict[str, Any]],
                counts: Counts, progress: RunProgress, detail: Callable[[dict[str, Any]], str],
                claims: Claims | None = None) -> None:
    """Record each ``(item, record)`` as it comes: traceback, predictions and row through ``bench.results``, the
    row into ``done`` (what a next round reads), the item's claim released, the counts, one progress line with
    ``detail(row)``. ``finished`` may be lazy (an executor's results, or rows computed one by one)."""
    last_consolidated = 0.0
    for item, record in finished:
        row = record.row
        results.record_cell(results_dir, record)  # traceback, predictions, then the row
        if claims is not None:
            claims.release(item.key)
        done[item.key] = row
        # The tables are rebuilt from cells/ (the source of truth) at most once a second: with many fast
        # workers, rebuilding after every row would cost more than the cells.
        if time.monotonic() - last_consolidated >= CONSOLIDATE_EVERY_S:
            results.consolidate_locked(results_dir)
            last_consolidated = time.monotonic()
        counts.ran += 1
        counts.failed += row["status"] == "error"
        progress.end_cell(item.label(), row["status"], detail(row))
