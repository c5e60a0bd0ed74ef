"""The results row: its columns, and the one place that builds a row's identity and provenance.

Every row starts from ``new_row`` (a finished cell, a failed one, a worker that died), so a new identity column is
added here once. Provenance (versions, git sha, device) is handed in by the caller: this module stays free of
torch, because the report and the regression gate read results without the training code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from bench.results.predictions import CellPredictions

# Column order of the tidy table. Parameters are also spread into ``p_<name>`` columns for filtering.
COLUMNS = [
    "cell", "suite", "task", "source_task", "backbone", "strategy", "seed", "fraction", "params", "status", "error",
    "accuracy", "macro_f1", "val_accuracy", "best_epoch", "epochs_run", "curve",
    "train_time_s", "eval_time_s", "feature_time_s", "wall_time_s", "first_epoch_time_s",
    "trainable_params", "total_params", "peak_mem_mb", "throughput", "batch_size_used",
    "n_train", "n_val", "n_test", "modality", "main_metric", "data_source", "weights_source",
    "device", "versions", "git_sha", "started_at", "finished_at",
    "role", "trial", "selected_from", "search_note", "budget_steps", "val_macro_f1",  # search (bench.plan.search)
    "curve_kind",  # "sgd" (per-epoch), "l2-path" (a solved probe's strengths), "none" (zero-shot)
    "fidelity", "fidelity_max", "pruned_by",  # race trials of bench.advise: epochs trained, planned, who stopped it
]
JSON_COLUMNS = ("params", "curve", "versions")
STATUSES = ("ok", "error", "skipped", "pruned")  # pruned: a race trial stopped early on purpose (bench.advise)
# What the report and the regression gate cannot do without: a results file lacking one is refused in one line.
REQUIRED_COLUMNS = ("cell", "task", "backbone", "strategy", "seed", "fraction", "status")


class CellLike(Protocol):
    key: str
    task: str
    backbone: str
    strategy: str
    seed: int
    fraction: float
    params: dict[str, Any]


@dataclass
class CellRecord:
    """What running a cell produces: its results row, the traceback of a failure, and what a finished cell
    predicted per example. The last two are kept out of the row: the orchestrator writes them to
    ``logs/<key>.txt`` and ``predictions/<key>.npz`` (``bench.results.store.record_cell``). A record travels
    from worker processes and Ray tasks pickled; numpy arrays pickle as they are."""

    row: dict[str, Any]
    traceback: str | None = None
    predictions: CellPredictions | None = None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_row(cell: CellLike, suite_name: str, modality: str, main_metric: str, provenance: dict[str, Any]
            ) -> dict[str, Any]:
    """A cell's row before it runs: identity, provenance (``device``, ``versions``, ``git_sha``), status ok."""
    return {
        "cell": cell.key, "suite": suite_name, "task": cell.task,
        "source_task": cell.params.get("source"),  # the second task of domain adaptation / multi-task cells
        "backbone": cell.backbone,
        "strategy": cell.strategy, "seed": cell.seed, "fraction": cell.fraction, "params": cell.params,
        "modality": modality, "main_metric": main_metric, **provenance, "started_at": now_iso(),
        "status": "ok", "error": None, "curve": [],
        # Search: a trial ('search') or a 'final' cell; finals name the trial they took their configuration from.
        "role": getattr(cell, "role", "final"), "trial": getattr(cell, "trial", None),
        "selected_from": getattr(cell, "selected_from", None), "search_note": getattr(cell, "search_note", None),
        "budget_steps": cell.params.get("budget_steps"),
    }
