"""Synthetic per-example predictions for synthetic results rows, written in the real format
(``bench.results.predictions``), so the report's confusion, calibration and browser tests read real files.

Every cell of one task shares its test examples (ids and true classes drawn from the task name); a cell gets each
example right with probability = its row's test accuracy, and gives its prediction a probability around that
accuracy plus ``overconfidence`` (0: calibrated on average).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from bench.results.predictions import CellPredictions, SplitPredictions, write_predictions

CLASSES = ("cat", "dog", "bird")


def _seed(*parts: Any) -> int:
    return int(hashlib.sha1(repr(parts).encode()).hexdigest()[:8], 16)


def cell_predictions(row: dict[str, Any], classes: tuple[str, ...] = CLASSES, n: int = 300,
                     overconfidence: float = 0.0, confuse: tuple[int, int] | None = None) -> CellPredictions:
    """Predictions for one ok row. ``confuse=(a, b)``: every wrong prediction of class ``a`` is ``b``."""
    k = len(classes)
    task_rng = np.random.default_rng(_seed(row["task"]))
    ids, y = np.arange(n), task_rng.integers(0, k, n)
    rng = np.random.default_rng(_seed(row["cell"]))
    acc = float(row["accuracy"]) if row.get("accuracy") is not None else 0.5
    correct = rng.random(n) < acc
    wrong = (y + rng.integers(1, k, n)) % k
    if confuse is not None:
        wrong = np.where(y == confuse[0], confuse[1], wrong)
    pred = np.where(correct, y, wrong)
    conf = np.clip(acc + overconfidence + rng.normal(0, 0.05, n), 1 / k + 0.01, 0.999)
    proba = np.repeat(((1 - conf) / (k - 1))[:, None], k, axis=1)
    proba[np.arange(n), pred] = conf
    test = SplitPredictions(ids, y, pred, proba.astype(np.float16))
    return CellPredictions(test=test, val=None, classes=tuple(classes))


def write_for_rows(results_dir: Path, rows: list[dict[str, Any]], **kwargs: Any) -> int:
    """Write predictions for every ok row; returns how many files were written."""
    written = 0
    for row in rows:
        if row.get("status", "ok") == "ok" and row.get("accuracy") is not None:
            write_predictions(results_dir, row["cell"], cell_predictions(row, **kwargs))
            written += 1
    return written
