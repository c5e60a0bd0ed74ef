"""Run one cell in this process and turn whatever happens into a results row.

A cell that raises (NaN loss, out-of-memory after batch halving, a plugin bug) becomes a row with
``status="error"``; a strategy that cannot run on the task/backbone becomes ``status="skipped"``. Executors call
``run_cell`` (in this process, a worker process or a Ray task) and ``failure_row`` for a cell whose worker never
answered; this module imports no executor.
"""

from __future__ import annotations

import dataclasses
import resource
import time
import traceback
from typing import Any, Callable

import torch

from bench.backbones import resolve_backbone
from bench.core.errors import SkipCell, TrialPruned, UserError, first_line
from bench.infra import provenance
from bench.results.schema import CellRecord, new_row, now_iso
from bench.plan import registry
from bench.run.context import RunContext
from bench.run.pretrain import install_pretrainer
from bench.run.progress import Heartbeat, RunProgress, quiet
from bench.plan.suite import Cell
from bench.run.taskdata import load_task_data

__all__ = ["MIN_BATCH", "failure_row", "run_cell"]

MIN_BATCH = 8  # out-of-memory retries halve the batch size down to this floor


def _start_row(cell: Cell, suite_name: str, device: torch.device | str | None) -> dict[str, Any]:
    meta = registry.get("task", cell.task).metadata
    return new_row(cell, suite_name, meta.modality, meta.main_metric, provenance.snapshot(device))


def run_cell(cell: Cell, suite_name: str, device: torch.device, progress: RunProgress | None = None,
             on_epoch: Callable[[dict], None] | None = None) -> CellRecord:
    """Run one cell and return its record (never raises for a failure inside the cell).

    ``on_epoch``: called with each validation point of the training loop after the progress display; it may
    raise ``TrialPruned`` to stop training (a race trial, ``bench.advise``): the row then has ``status="pruned"``
    and the curve it reached.
    """
    t0 = time.perf_counter()
    install_pretrainer()  # a source-pretrained backbone trains its weights on first use (bench.run.pretrain)
    strategy = registry.get("strategy", cell.strategy)
    task = registry.get("task", cell.task)
    backbone = resolve_backbone(cell.backbone)
    row = _start_row(cell, suite_name, device)
    row["depth"] = getattr(backbone, "depth", None)  # source-pretrained backbones know their architecture's depth
    tb, predictions = None, None
    params = dict(cell.params)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        reason = strategy.skip_reason(task.metadata, backbone)
        if reason:
            raise SkipCell(reason)
        data = load_task_data(cell.task)
        row["data_source"] = data.source
        outcome = _run_with_oom_retry(cell, strategy, task, data, backbone, params, device, progress, row, on_epoch)
        # The per-example predictions travel beside the row, not in it (results.parquet stays small).
        predictions = outcome.predictions
        fields = dataclasses.asdict(dataclasses.replace(outcome, predictions=None))
        del fields["predictions"]
        row.update(fields, epochs_run=outcome.epochs_run)
        random_init = cell.strategy == "from-scratch" or params.get("init") == "random"
        row["weights_source"] = "random init" if random_init else backbone.weights_source()
    except SkipCell as skip:
        row.update(status="skipped", error=str(skip))
    except TrialPruned as stop:  # stopped on purpose by the caller's callback: its curve is the evidence
        best = max(stop.curve[1:] or stop.curve, key=lambda p: p.get(f"val_{row['main_metric']}", -1.0), default={})
        row.update(status="pruned", error=stop.reason, curve=stop.curve, val_accuracy=best.get("val_accuracy"),
                   val_macro_f1=best.get("val_macro_f1"), best_epoch=best.get("epoch"),
                   epochs_run=sum(1 for p in stop.curve if p.get("epoch") != 0))
    except (KeyboardInterrupt, SystemExit):
        raise
    except UserError as err:
        row.update(status="error", error=str(err))
    except Exception as err:  # noqa: BLE001 - any plugin failure becomes an error row; the matrix goes on
        row.update(status="error", error=first_line(err))
        tb = traceback.format_exc(limit=20)
    row["batch_size_used"] = params["batch_size"]
    row["wall_time_s"] = time.perf_counter() - t0
    row["peak_mem_mb"] = _peak_mem_mb(device)
    row["finished_at"] = now_iso()
    return CellRecord(row, tb, predictions if row["status"] == "ok" else None)


def _run_with_oom_retry(cell, strategy, task, data, backbone, params, device, progress, row, hook=None):
    """timm's benchmark habit: on CUDA out-of-memory shrink the batch and retry instead of losing the cell."""
    while True:
        try:
            torch.manual_seed(cell.seed)
            # A worker (process pool, Ray) has no progress bar: in CI its log still shows the cell is alive.
            on_epoch = progress.epoch if progress else (Heartbeat(cell.label(), int(params.get("epochs", 1))).epoch
                                                        if quiet() else None)
            ctx = RunContext(task, data, backbone, params, cell.seed, cell.fraction, device, _chain(on_epoch, hook))
            row.update(ctx.sizes)
            return strategy.run(ctx)
        except torch.cuda.OutOfMemoryError:
            if params["batch_size"] // 2 < MIN_BATCH:
                raise
            params["batch_size"] //= 2
            torch.cuda.empty_cache()


def _chain(*callbacks: Callable[[dict], None] | None) -> Callable[[dict], None] | None:
    """One per-epoch callback calling each given one in order (None when none is given)."""
    present = [c for c in callbacks if c is not None]
    if len(present) <= 1:
        return present[0] if present else None

    def both(point: dict) -> None:
        for callback in present:
            callback(point)

    return both


def failure_row(cell: Cell, suite_name: str, error: str, wall_time_s: float, device: str | None) -> dict[str, Any]:
    """The row of a cell that never returned one (its worker died, or it ran past the time limit)."""
    row = _start_row(cell, suite_name, device)
    row.update(status="error", error=error, finished_at=row["started_at"], wall_time_s=wall_time_s,
               batch_size_used=cell.params.get("batch_size"))
    return row


def _peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # On CPU: the process's peak resident set (Linux reports KiB), an upper bound for the cell.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
