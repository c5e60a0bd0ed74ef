"""Run a suite (the orchestrator): expand it into cells, skip the recorded ones, hand the rest to an executor,
record every outcome. With a hyperparameter search the run goes in rounds (``bench.plan.rounds``: trials in
waves, then the selected configuration on every seed); without one it is a single round of every cell.

What one cell does lives in ``bench.run.cell``; where cells run in ``bench.execution``; how each finished cell is
recorded in ``bench.run.rowloop`` (shared with ``transferbench estimate``). This module is the only writer of a
results directory while a run is going: interrupting and rerunning resumes, finished cells are read from the results
directory, not recomputed.

Several runners may share one results directory (two terminals, two machines on a shared disk): each takes a claim
on a cell before handing it to its executor (``bench.infra.claims``), skips the cells others hold, and comes back
to them after its own, waiting for their rows or taking over the claim of a runner that died.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import results
from bench.results import roles
from bench.core.errors import UserError
from bench.execution import make_executor
from bench.execution.base import CellQueue
from bench.infra.atomic import write_json
from bench.infra.claims import DEFAULT_TIMEOUT_S, Claims
from bench.infra.provenance import pick_device
from bench.plan import preflight
from bench.run.pretrain import record_pretraining, source_specs
from bench.run.progress import RunProgress
from bench.plan.rounds import SearchPlan
from bench.plan.suite import Cell, Suite, expand
from bench.run.rowloop import pending, record_rows


def select(cells: list[Cell], only: list[str]) -> list[Cell]:
    """Keep cells matching every ``KEY=VALUE`` (keys: task, backbone, strategy, role, seed, fraction, or a
    parameter; ``role=search`` runs the searches only)."""
    for item in only:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--only {item!r}: expected KEY=VALUE, e.g. --only strategy=zero-shot")
        known = any(key in c.params for c in cells)

        def matches(cell: Cell, key=key, value=value, item=item, known=known) -> bool:
            if key in ("task", "backbone", "strategy", "role"):
                return getattr(cell, key) == value
            actual = getattr(cell, key) if key in ("seed", "fraction") else cell.params.get(key, KeyError)
            if actual is KeyError:  # a parameter of other strategies (e.g. source) filters those cells out
                if not known:
                    raise UserError(f"--only {item!r}: unknown key {key!r}")
                return False
            return str(actual) == value or (isinstance(actual, float) and _float_eq(actual, value))

        cells = [c for c in cells if matches(c)]
    return cells


def _float_eq(actual: float, text: str) -> bool:
    try:
        return abs(actual - float(text)) < 1e-12
    except ValueError:
        return False


@dataclasses.dataclass
class RunSummary:
    results_dir: Path
    total: int
    skipped_done: int
    ran: int
    failed: int
    by_others: int = 0  # cells another runner on the same results directory recorded while this one ran


def check_before_run(suite: Suite, results_dir: Path, only: list[str] | None = None, force: bool = False) -> None:
    """Raise one UserError line when cells still to run cannot run (``bench.plan.preflight``), before anything is
    written: the cells of the suite that ``only`` keeps, less the ones recorded as ``ok`` (unless ``force``)."""
    recorded = set() if force else {k for k, row in _recorded(results_dir).items() if row.get("status") == "ok"}
    preflight.check_cells(c for c in select(expand(suite), only or []) if c.key not in recorded)


def _recorded(results_dir: Path) -> dict[str, dict[str, Any]]:
    if not results.cells_dir(results_dir).is_dir():
        return {}
    return results.read_cell_rows(results_dir, on_damaged=lambda path, why: None)


def prepare_results_dir(suite: Suite, suite_file: Path | None, results_dir: Path, cells: list[Cell]) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    if suite_file is not None and suite_file.resolve() != (results_dir / "suite.yaml").resolve():
        shutil.copyfile(suite_file, results_dir / "suite.yaml")
    # plan.json lets the report count pending cells without importing the training code.
    write_json(results_dir / "plan.json", {"suite": suite.name, "cells": [c.key for c in cells]})


def run_suite(suite: Suite, results_dir: Path, suite_file: Path | None = None, force: bool = False,
              retry_errors: bool = False, only: list[str] | None = None, device: str | None = None,
              executor: str = "local", workers: int | None = None, ray_address: str | None = None,
              cell_timeout: float | None = None, retries: int = 1,
              claim_timeout: float = DEFAULT_TIMEOUT_S) -> RunSummary:
    """Run the suite's unrecorded cells with the chosen executor (``local``, ``process`` or ``ray``).

    Whatever the executor, this process records every row (one atomic file per cell), so any executor can resume
    a run another one started. See ``bench.execution`` for workers, retries and time limits, and
    ``bench.infra.claims`` for runners sharing ``results_dir`` (``claim_timeout``: seconds without a heartbeat
    after which another runner's claim is taken over).
    """
    runner = make_executor(executor, device, workers, ray_address, cell_timeout, retries)
    pick_device(device)  # a bad --device fails here, before any worker starts
    plan = SearchPlan(suite, expand(suite), lambda cells: select(cells, only or []), runner.parallelism)
    cells = plan.next_round({})
    if not cells:
        raise UserError("no cells match the --only filters; drop or correct them")
    check_before_run(suite, results_dir, only, force)
    prepare_results_dir(suite, suite_file, results_dir, cells)
    damaged: list[str] = []
    # Which row files exist before this run reads them: a row that changes after this was written during this run,
    # by this runner or another one sharing the directory, and is never computed again (not even with --force).
    initial = _row_stamps(results_dir)
    done = results.read_cell_rows(results_dir, on_damaged=lambda p, why: damaged.append(p.name))
    if damaged:
        print(f"warning: {len(damaged)} damaged cell file(s) will be recomputed: {', '.join(damaged[:5])}",
              file=sys.stderr)
    summary = RunSummary(results_dir, 0, 0, 0, 0)
    planned = plan.size()
    with RunProgress(planned) as progress, Claims(results_dir, claim_timeout) as claims:
        while cells:
            todo = pending(cells, done, force, retry_errors)
            summary.total += len(cells)
            summary.skipped_done += len(cells) - len(todo)
            progress.set_total(planned - summary.skipped_done - summary.by_others)
            if summary.skipped_done and summary.total == len(cells):  # the first round
                progress.note(f"{summary.skipped_done} of {len(cells)} cells already recorded in {results_dir}; "
                              "running the rest (--force to recompute)")
            for spec in source_specs(sorted({c.backbone for c in todo})):  # before any worker needs the weights
                record_pretraining(spec, results_dir)
            todo = [c for c in todo if not _reuse_trial(c, results_dir, done)]
            _run_shared(runner, todo, suite.name, results_dir, done, summary, progress, claims, initial)
            cells = plan.next_round(done)
            if cells:  # the search decides the next cells: the plan grows as it goes
                write_json(results_dir / "plan.json", {"suite": suite.name, "cells": plan.issued})
    results.consolidate_locked(results_dir)
    return summary


def _reuse_trial(cell: Cell, results_dir: Path, done: dict[str, dict[str, Any]]) -> bool:
    """Record the selected trial's own row as the final of the seed it ran on, instead of running it again.

    Same parameters and same seed make it the same run (the search trains on the first seed), so the row is copied
    under the final cell's key with ``role: final``; the other seeds run as usual.
    """
    trial = done.get(cell.selected_from or "")
    if trial is None or trial.get("status") != "ok" or trial.get("seed") != cell.seed:
        return False
    if json.dumps(trial.get("params"), sort_keys=True, default=str) != json.dumps(cell.params, sort_keys=True,
                                                                                   default=str):
        return False
    row = dict(trial, cell=cell.key, role=roles.FINAL, trial=None, selected_from=cell.selected_from,
               search_note=cell.search_note)
    results.record_copy(results_dir, row, trial["cell"])  # the trial's predictions too
    done[cell.key] = row
    return True


def _run_shared(runner, todo: list[Cell], suite_name: str, results_dir: Path, done: dict[str, dict[str, Any]],
                summary: RunSummary, progress: RunProgress, claims: Claims,
                initial: dict[str, tuple[int, int]]) -> None:
    """Run every cell of ``todo`` once across the runners sharing ``results_dir``; return when all are recorded.

    Cells are claimed one by one as the executor asks for them; the ones other runners hold are set aside and
    looked at again after this runner's share: recorded by then (the row is read into ``done``), still held (wait
    and look again), or given up by a runner that died (taken over and run here). A search's next wave needs every
    row of this one, so this returns only when each cell has a row, whoever wrote it.
    """
    seen = {c.key: initial.get(c.key) for c in todo}  # a row written since then is another runner's work
    others_before = summary.by_others
    while todo:
        elsewhere: list[Cell] = []

        def take(cell: Cell, elsewhere: list[Cell] = elsewhere) -> bool:
            if not claims.take(cell.key):
                elsewhere.append(cell)
                return False
            if _row_stamp(results_dir, cell.key) != seen[cell.key]:  # recorded by another runner just before
                claims.release(cell.key)
                elsewhere.append(cell)
                return False
            return True

        ran_before = summary.ran
        with contextlib.closing(runner.run(CellQueue(todo, take), suite_name, progress)) as finished:
            record_rows(finished, results_dir, done, summary, progress, _detail, claims)  # also into done
        todo = []
        for cell in elsewhere:
            row = _read_row(results_dir, cell.key) if _row_stamp(results_dir, cell.key) != seen[cell.key] else None
            if row is None:
                todo.append(cell)
                continue
            done[cell.key] = row
            summary.by_others += 1
        if todo and summary.ran == ran_before:  # all held by live runners: give them time
            time.sleep(_poll_s(claims))
    if summary.by_others > others_before:  # the bar counts this runner's cells
        progress.set_total(max(progress.done, progress.total - (summary.by_others - others_before)))


def _poll_s(claims: Claims) -> float:
    return max(0.05, min(2.0, claims.timeout_s / 6))


def _row_stamps(results_dir: Path) -> dict[str, tuple[int, int]]:
    folder = results.cells_dir(results_dir)
    if not folder.is_dir():
        return {}
    with os.scandir(folder) as entries:
        return {e.name[:-5]: _stamp(e.stat()) for e in entries if e.name.endswith(".json") and e.is_file()}


def _stamp(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_ino, stat.st_mtime_ns  # rows are replaced, never rewritten in place: a new row, a new inode


def _row_stamp(results_dir: Path, key: str) -> tuple[int, int] | None:
    """Which version of cell ``key``'s row file is there (None: no row), to notice rows other runners write."""
    try:
        return _stamp((results.cells_dir(results_dir) / f"{key}.json").stat())
    except FileNotFoundError:
        return None


def _read_row(results_dir: Path, key: str) -> dict[str, Any] | None:
    try:
        row = json.loads((results.cells_dir(results_dir) / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and row.get("cell") == key else None


def _detail(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return str(row["error"])
    return f"test acc {row['accuracy']:.4f} (val {row['val_accuracy']:.4f}) in {row['wall_time_s']:.1f}s"

