"""Run a suite (the orchestrator): expand it into cells, skip the recorded ones, hand the rest to an executor,
record every outcome. With a hyperparameter search the run goes in rounds (``bench.search_runner``: trials in
waves, then the selected configuration on every seed); without one it is a single round of every cell.

What one cell does lives in ``bench.run.cell``; where cells run in ``bench.execution``. This module is the only
writer of a results directory while a run is going: interrupting and rerunning resumes, finished cells are read
from the results directory, not recomputed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import results
from bench.core.errors import UserError
from bench.execution import make_executor
from bench.infra.atomic import write_json
from bench.infra.provenance import pick_device
from bench.run.pretrain import record_pretraining, source_specs
from bench.run.progress import RunProgress
from bench.run.suite import Cell, Suite, expand
from bench.search_runner import SearchPlan


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


def prepare_results_dir(suite: Suite, suite_file: Path | None, results_dir: Path, cells: list[Cell]) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    if suite_file is not None and suite_file.resolve() != (results_dir / "suite.yaml").resolve():
        shutil.copyfile(suite_file, results_dir / "suite.yaml")
    # plan.json lets the report count pending cells without importing the training code.
    write_json(results_dir / "plan.json", {"suite": suite.name, "cells": [c.key for c in cells]})


def run_suite(suite: Suite, results_dir: Path, suite_file: Path | None = None, force: bool = False,
              retry_errors: bool = False, only: list[str] | None = None, device: str | None = None,
              executor: str = "local", workers: int | None = None, ray_address: str | None = None,
              cell_timeout: float | None = None, retries: int = 1) -> RunSummary:
    """Run the suite's unrecorded cells with the chosen executor (``local``, ``process`` or ``ray``).

    Whatever the executor, this process records every row (one atomic file per cell), so any executor can resume
    a run another one started. See ``bench.execution`` for workers, retries and time limits.
    """
    runner = make_executor(executor, device, workers, ray_address, cell_timeout, retries)
    pick_device(device)  # a bad --device fails here, before any worker starts
    plan = SearchPlan(suite, expand(suite), lambda cells: select(cells, only or []), runner.parallelism)
    cells = plan.next_round({})
    if not cells:
        raise UserError("no cells match the --only filters; drop or correct them")
    prepare_results_dir(suite, suite_file, results_dir, cells)
    damaged: list[str] = []
    done = results.read_cell_rows(results_dir, on_damaged=lambda p, why: damaged.append(p.name))
    if damaged:
        print(f"warning: {len(damaged)} damaged cell file(s) will be recomputed: {', '.join(damaged[:5])}",
              file=sys.stderr)
    summary = RunSummary(results_dir, 0, 0, 0, 0)
    planned = plan.size()
    with RunProgress(planned) as progress:
        while cells:
            todo = [c for c in cells
                    if force or c.key not in done or (retry_errors and done[c.key]["status"] == "error")]
            summary.total += len(cells)
            summary.skipped_done += len(cells) - len(todo)
            progress.set_total(planned - summary.skipped_done)
            if summary.skipped_done and summary.total == len(cells):  # the first round
                progress.note(f"{summary.skipped_done} of {len(cells)} cells already recorded in {results_dir}; "
                              "running the rest (--force to recompute)")
            for spec in source_specs(sorted({c.backbone for c in todo})):  # before any worker needs the weights
                record_pretraining(spec, results_dir)
            todo = [c for c in todo if not _reuse_trial(c, results_dir, done)]
            _run_round(runner, todo, suite.name, results_dir, done, summary, progress)
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
    row = dict(trial, cell=cell.key, role="final", trial=None, selected_from=cell.selected_from,
               search_note=cell.search_note)
    results.record_copy(results_dir, row, trial["cell"])  # the trial's predictions too
    done[cell.key] = row
    return True


def _run_round(runner, todo: list[Cell], suite_name: str, results_dir: Path, done: dict[str, dict[str, Any]],
               summary: RunSummary, progress: RunProgress) -> None:
    """Run ``todo`` with the executor and record every row (also into ``done``, which the next round reads)."""
    last_consolidated = 0.0
    with contextlib.closing(runner.run(todo, suite_name, progress)) as finished:
        for cell, record in finished:
            row = record.row
            results.record_cell(results_dir, record)  # traceback, predictions, then the row
            done[cell.key] = row
            # The tables are rebuilt from cells/ (the source of truth) at most once a second: with many fast
            # workers, rebuilding after every row would cost more than the cells.
            if time.monotonic() - last_consolidated >= 1.0:
                results.consolidate_locked(results_dir)
                last_consolidated = time.monotonic()
            summary.ran += 1
            summary.failed += row["status"] == "error"
            progress.end_cell(cell.label(), row["status"], _detail(row))


def _detail(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return str(row["error"])
    return f"test acc {row['accuracy']:.4f} (val {row['val_accuracy']:.4f}) in {row['wall_time_s']:.1f}s"

