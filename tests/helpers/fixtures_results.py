"""Hand-made results rows for the report tests: known curves and accuracies, hostile names, partial runs.

Not a conftest: tests import what they need, so every fixture's numbers are visible from the test using them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench.results import to_frame, write_row
from report import synthetic

HOSTILE = "<script>alert(1)</script>"


def make_row(task: str = "t", backbone: str = "b", strategy: str = "from-scratch", seed: int = 0,
             fraction: float = 1.0, curve: list[float] | None = None, accuracy: float | None = None,
             epoch_seconds: float = 1.0, status: str = "ok", error: str | None = None, **extra: Any) -> dict:
    """One row in the results schema with a learning curve ``curve`` (val accuracy per epoch).

    Epoch e ends at ``e * epoch_seconds`` wall seconds; the selected epoch is the best one; test accuracy
    defaults to the curve's best value.
    """
    curve = list(curve or [])
    points = [{"epoch": e, "val_accuracy": v, "time_s": e * epoch_seconds, "epoch_time_s": epoch_seconds,
               "train_loss": 1 - v, "train_accuracy": v, "val_macro_f1": v} for e, v in enumerate(curve, 1)]
    best = max(range(len(curve)), key=curve.__getitem__) + 1 if curve else None
    row = {
        "cell": synthetic.cell_key(task, backbone, strategy, seed, fraction, extra.get("tag")), "suite": "fixture",
        "task": task, "backbone": backbone, "strategy": strategy, "seed": seed, "fraction": fraction,
        "params": "{}", "status": status, "error": error, "curve": json.dumps(points),
        "versions": json.dumps({"torch": "2.14.1"}), "device": "cpu", "git_sha": "abc1234",
        "started_at": "2025-01-01T00:00:00", "finished_at": "2025-01-01T01:00:00", "main_metric": "accuracy",
    }
    if status == "ok":
        row.update(accuracy=accuracy if accuracy is not None else (max(curve) if curve else None),
                   val_accuracy=curve[best - 1] if curve else accuracy, best_epoch=best, epochs_run=len(curve),
                   macro_f1=None, wall_time_s=len(curve) * epoch_seconds + 0.5, trainable_params=1000,
                   total_params=5000)
    row.update({k: v for k, v in extra.items() if k != "tag"})
    return row


def frame(rows: list[dict]) -> pd.DataFrame:
    """The frame ``load_results`` would return for these rows."""
    return to_frame(rows)


def issue_example(seeds: int = 3) -> list[dict]:
    """The issue's example: transfer curve [0.5, 0.6, 0.7] vs from-scratch [0.3, 0.5, 0.7], identical seeds."""
    rows = []
    for seed in range(seeds):
        rows.append(make_row(strategy="from-scratch", seed=seed, curve=[0.3, 0.5, 0.7], epoch_seconds=2.0))
        rows.append(make_row(strategy="full-fine-tune", seed=seed, curve=[0.5, 0.6, 0.7], epoch_seconds=3.0))
    return rows


def small_mixed() -> list[dict]:
    """A small realistic set: two tasks (one with a hostile name), zero-shot, failures, a skipped cell."""
    rows = synthetic.sweep(tasks=1, backbones=2, fractions=(0.1, 1.0), seeds=3, epochs=6)
    for strategy in ("from-scratch", "full-fine-tune", "zero-shot"):
        for seed in range(2):
            rows.append(synthetic.row(HOSTILE, "b$x$", strategy, seed, 1.0, epochs=5))
    rows.append(make_row(task=HOSTILE, strategy="partial-freeze", status="error",
                         error=f"RuntimeError: {HOSTILE} CUDA out of memory"))
    rows.append(make_row(task="task-0", strategy="zero-shot", backbone="backbone-9", status="skipped",
                         error="zero-shot: task has no class names"))
    return rows


def write_results(results_dir: Path, rows: list[dict], pending: int = 0) -> Path:
    """Record ``rows`` as a runner would, plus a plan.json listing ``pending`` more cells not yet run."""
    for row in rows:
        write_row(results_dir, row)
    cells = [r["cell"] for r in rows] + [f"pending{i:04d}" for i in range(pending)]
    (results_dir / "plan.json").write_text(json.dumps({"suite": "fixture", "cells": cells}), encoding="utf-8")
    return results_dir
