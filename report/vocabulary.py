"""The results-frame vocabulary every part of the report shares: column names, the comparison group, the strategy
order, roles, and ``normalize`` (a results frame with every column the report reads, curves parsed).

Imports nothing else of the report, so the analyses, the figures and the HTML sections can all build on it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bench.results import seedstats as stats
from bench.results.predictions import CellPredictions
from bench.results.roles import ESTIMATE, FINAL, SEARCH, final_only, is_final, is_role  # noqa: F401 - re-exported

Predictions = Mapping[str, CellPredictions]  # cell key -> what the cell predicted (bench.results.predictions.read_many)

BASELINE = "from-scratch"
# Known strategies first, in the order the lectures introduce them; anything newer follows alphabetically.
STRATEGY_ORDER = ("from-scratch", "feature-extraction", "partial-freeze", "full-fine-tune", "zero-shot")
GROUP = ["task", "backbone", "fraction"]  # one comparison: same task, same backbone, same label budget
NUMERIC = ["seed", "fraction", "accuracy", "macro_f1", "val_accuracy", "best_epoch", "epochs_run", "wall_time_s",
           "train_time_s", "trainable_params", "total_params", "first_epoch_time_s", "n_test"]
TEXT = ["cell", "suite", "task", "backbone", "strategy", "status", "error", "device", "git_sha", "versions",
        "started_at", "finished_at", "main_metric", "role", "curve_kind", "selected_from"]


def _parse_json(value: Any, default: Any) -> Any:
    if isinstance(value, (list, dict)):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return json.loads(value)
        except ValueError:
            return default
    return default


def _curve_arrays(curve: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(val_accuracy, time_s, epoch number) per curve point in epoch order; missing values are NaN.

    A point without an ``epoch`` number counts as the one after the previous point (epoch 1 first), as the
    loop recorded them before curves could start with an epoch-0 point (the score before any training).
    """
    epochs = [e for e in _parse_json(curve, []) if isinstance(e, dict)]
    numbers = [e.get("epoch") if isinstance(e.get("epoch"), (int, float)) else i + 1 for i, e in enumerate(epochs)]
    order = sorted(range(len(epochs)), key=numbers.__getitem__)
    epochs, numbers = [epochs[i] for i in order], [numbers[i] for i in order]

    def column(key: str) -> np.ndarray:
        return np.array([e.get(key) if isinstance(e.get(key), (int, float)) else np.nan for e in epochs], float)

    return column("val_accuracy"), column("time_s"), np.array(numbers, float)


def curve_kind(recorded: Any, curve: Any) -> str:
    """What a row's curve points are (``seedstats.CURVE_KINDS``): the recorded ``curve_kind`` when the row has
    one; for rows recorded before that column existed, read from the curve itself: points carrying an ``l2``
    strength are a solved probe's L2 path, a curve that is empty or only the epoch-0 point is "none" (zero-shot),
    anything else is per-epoch SGD (this also classifies version-1 feature-extraction, which trained by SGD)."""
    if recorded in stats.CURVE_KINDS:
        return str(recorded)
    points = [p for p in _parse_json(curve, []) if isinstance(p, dict)]
    if any("l2" in p for p in points):
        return stats.L2_PATH
    if all(p.get("epoch") == 0 for p in points):  # also the empty curve
        return stats.NO_CURVE
    return stats.SGD


def curve_start(epochs: np.ndarray) -> int:
    """Epoch number of a curve's first point: 0 when it has the before-training point, else 1."""
    return int(epochs[0]) if len(epochs) and np.isfinite(epochs[0]) and epochs[0] == 0 else 1


def strategy_sort_key(name: str) -> tuple[int, str]:
    return (STRATEGY_ORDER.index(name) if name in STRATEGY_ORDER else len(STRATEGY_ORDER), str(name))


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every column the report reads, numeric columns as floats and curves parsed.

    Adds ``_val_curve``, ``_time_curve`` and ``_epoch_curve`` (float arrays per row), ``_curve_kind`` (see
    ``curve_kind``) and ``role`` (``final`` where missing). Works on frames from ``load_results``, from a
    CSV round trip (JSON as text) or built by hand (lists and dicts, missing columns).
    """
    out = frame.copy()
    for col in NUMERIC + TEXT + ["curve"]:
        if col not in out.columns:
            out[col] = None
    for col in NUMERIC:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in TEXT:
        out[col] = out[col].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    out["status"] = out["status"].fillna("error")
    for col in ("task", "backbone", "strategy"):
        out[col] = out[col].fillna("?")
    out.loc[is_final(out), "role"] = FINAL
    arrays = [_curve_arrays(c) for c in out["curve"]]
    out["_val_curve"] = [a for a, _, _ in arrays]
    out["_time_curve"] = [t for _, t, _ in arrays]
    out["_epoch_curve"] = [e for _, _, e in arrays]
    out["_curve_kind"] = [curve_kind(k, c) for k, c in zip(out["curve_kind"], out["curve"])]
    return out.reset_index(drop=True)

