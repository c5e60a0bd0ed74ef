"""Run a suite: expand it into cells, skip the recorded ones, run the rest one by one, record every outcome.

A cell that raises (NaN loss, out-of-memory, a plugin bug) becomes a row with ``status="error"``; the matrix goes
on. Interrupting and rerunning resumes: finished cells are read from the results directory, not recomputed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import resource
import shutil
import sys
import time
import traceback
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from bench import registry, results
from bench.atomic import write_json, write_text
from bench.backbones import resolve_backbone
from bench.cell import CellContext
from bench.errors import SkipCell, UserError
from bench.progress import RunProgress
from bench.provenance import describe_device, git_sha, pick_device, versions
from bench.suite import Cell, Suite, expand

MIN_BATCH = 8  # out-of-memory retries halve the batch size down to this floor


@lru_cache(maxsize=2)
def load_task_data(task_name: str):
    task = registry.get("task", task_name)
    return task.check_labels(task.load())


def select(cells: list[Cell], only: list[str]) -> list[Cell]:
    """Keep cells matching every ``KEY=VALUE`` (keys: task, backbone, strategy, seed, fraction, or a parameter)."""
    for item in only:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--only {item!r}: expected KEY=VALUE, e.g. --only strategy=zero-shot")

        def matches(cell: Cell, key=key, value=value, item=item) -> bool:
            if key in ("task", "backbone", "strategy"):
                return getattr(cell, key) == value
            actual = getattr(cell, key) if key in ("seed", "fraction") else cell.params.get(key, KeyError)
            if actual is KeyError:
                raise UserError(f"--only {item!r}: unknown key {key!r}")
            return str(actual) == value or (isinstance(actual, float) and _float_eq(actual, value))

        cells = [c for c in cells if matches(c)]
    return cells


def _float_eq(actual: float, text: str) -> bool:
    try:
        return abs(actual - float(text)) < 1e-12
    except ValueError:
        return False


def run_cell(cell: Cell, suite_name: str, device: torch.device, progress: RunProgress | None = None) -> dict[str, Any]:
    """Run one cell and return its results row (never raises for a failure inside the cell)."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    task = registry.get("task", cell.task)
    strategy = registry.get("strategy", cell.strategy)
    backbone = resolve_backbone(cell.backbone)
    row: dict[str, Any] = {
        "cell": cell.key, "suite": suite_name, "task": cell.task, "backbone": cell.backbone,
        "strategy": cell.strategy, "seed": cell.seed, "fraction": cell.fraction, "params": cell.params,
        "modality": task.metadata.modality, "main_metric": task.metadata.main_metric,
        "device": describe_device(device), "versions": versions(), "git_sha": git_sha(), "started_at": started,
        "status": "ok", "error": None, "curve": [],
    }
    params = dict(cell.params)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        reason = strategy.skip_reason(task.metadata, backbone)
        if reason:
            raise SkipCell(reason)
        data = load_task_data(cell.task)
        row["data_source"] = data.source
        while True:
            try:
                torch.manual_seed(cell.seed)
                on_epoch = progress.epoch if progress else None
                ctx = CellContext(task, data, backbone, params, cell.seed, cell.fraction, device, on_epoch)
                row.update(ctx.sizes)
                outcome = strategy.run(ctx)
                break
            except torch.cuda.OutOfMemoryError:
                # timm's benchmark habit: shrink the batch and retry instead of losing the cell.
                if params["batch_size"] // 2 < MIN_BATCH:
                    raise
                params["batch_size"] //= 2
                torch.cuda.empty_cache()
        row.update(dataclasses.asdict(outcome), epochs_run=outcome.epochs_run)
        row["weights_source"] = backbone.weights_source() if cell.strategy != "from-scratch" else "random init"
    except SkipCell as skip:
        row.update(status="skipped", error=str(skip))
    except (KeyboardInterrupt, SystemExit):
        raise
    except UserError as err:
        row.update(status="error", error=str(err))
    except Exception as err:  # noqa: BLE001 - any plugin failure becomes an error row; the matrix goes on
        first_line = (str(err).strip().splitlines() or [""])[0]
        row.update(status="error", error=f"{type(err).__name__}: {first_line}",
                   traceback=traceback.format_exc(limit=20))
    row["batch_size_used"] = params["batch_size"]
    row["wall_time_s"] = time.perf_counter() - t0
    row["peak_mem_mb"] = _peak_mem_mb(device)
    row["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return row


def _peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # On CPU: the process's peak resident set (Linux reports KiB), an upper bound for the cell.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    a run another one started. See bench/executors.py for workers, retries and time limits.
    """
    from bench.executors import consolidate_locked, make_executor

    runner = make_executor(executor, device, workers, ray_address, cell_timeout, retries)
    pick_device(device)  # a bad --device fails here, before any worker starts
    cells = select(expand(suite), only or [])
    if not cells:
        raise UserError("no cells match the --only filters; drop or correct them")
    prepare_results_dir(suite, suite_file, results_dir, cells)
    damaged: list[str] = []
    done = results.read_cell_rows(results_dir, on_damaged=lambda p, why: damaged.append(p.name))
    if damaged:
        print(f"warning: {len(damaged)} damaged cell file(s) will be recomputed: {', '.join(damaged[:5])}",
              file=sys.stderr)
    todo = [c for c in cells if force or c.key not in done or (retry_errors and done[c.key]["status"] == "error")]
    summary = RunSummary(results_dir, len(cells), len(cells) - len(todo), 0, 0)
    last_consolidated = 0.0
    with RunProgress(len(todo)) as progress, contextlib.closing(runner.run(todo, suite.name, progress)) as finished:
        if summary.skipped_done:
            progress.note(f"{summary.skipped_done} of {len(cells)} cells already recorded in {results_dir}; "
                          "running the rest (--force to recompute)")
        for cell, row in finished:
            tb = row.pop("traceback", None)
            if tb:
                write_text(results_dir / "logs" / f"{cell.key}.txt", tb)
            results.write_row(results_dir, row)
            # The tables are rebuilt from cells/ (the source of truth) at most once a second: with many fast
            # workers, rebuilding after every row would cost more than the cells.
            if time.monotonic() - last_consolidated >= 1.0:
                consolidate_locked(results_dir)
                last_consolidated = time.monotonic()
            summary.ran += 1
            summary.failed += row["status"] == "error"
            progress.end_cell(cell.label(), row["status"], _detail(row))
    consolidate_locked(results_dir)
    return summary


def _detail(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return str(row["error"])
    return f"test acc {row['accuracy']:.4f} (val {row['val_accuracy']:.4f}) in {row['wall_time_s']:.1f}s"

