"""What each strategy's result cost: hyperparameter-search trials plus the final runs, in steps and wall time.

Rows carry a ``role``: ``search`` (one hyperparameter trial), ``final`` (the selected configuration on every
seed; a missing or empty role means final), ``pretrain`` and ``estimate``. The leaderboard counts final rows only,
so a strategy that needed forty search trials looks as cheap as one that needed none; this table puts the search
back: per task × backbone × strategy × label fraction, the number of trials, the optimizer steps they and the
final runs trained, and the wall time of each and in total.

Steps are the row's ``budget_steps`` when recorded; otherwise epochs run × steps per epoch, with steps per epoch
inferred the way the training loop counts them (``n_train``, ``batch_size``, ``min_steps_per_epoch``); when that
cannot be inferred either the table shows epochs instead (``steps_source``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from report.vocabulary import FINAL, GROUP, SEARCH, is_final, strategy_sort_key

NOT_SEARCHED = "not searched (no tunable hyperparameters)"
SINGLE = "single configuration"
COLUMNS = ["task", "backbone", "strategy", "fraction", "search_trials", "search_runs", "final_runs",
           "search_steps", "final_steps", "total_steps", "search_epochs", "final_epochs", "steps_source",
           "search_wall_time_s", "final_wall_time_s", "total_wall_time_s", "selected_from", "note"]


def _params(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def parameter_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One column per parameter name for each row: the ``p_<name>`` columns, filled from ``params`` (JSON)
    where a row has no spread column (results written as CSV by hand, or before the columns existed)."""
    spread = {c[2:]: frame[c] for c in frame.columns if c.startswith("p_")}
    parsed = pd.DataFrame([_params(v) for v in frame["params"]] if "params" in frame.columns else [{}] * len(frame),
                          index=frame.index)
    out = parsed.copy()
    for name, column in spread.items():
        out[name] = column.where(column.notna(), parsed[name]) if name in parsed.columns else column
    return out


def steps_per_epoch(n_train: float, batch_size: float, min_steps: float) -> float:
    """The training loop's count (``bench.run.train.steps_per_epoch``, which the report may not import: it needs
    torch): full batches per pass, one when the data is smaller than a batch, at least ``min_steps``."""
    if not (math.isfinite(n_train) and math.isfinite(batch_size)) or n_train <= 0 or batch_size <= 0:
        return math.nan
    batch = min(batch_size, n_train)
    min_steps = min_steps if math.isfinite(min_steps) else 10.0  # the shared default of min_steps_per_epoch
    return float(max(n_train // batch, min_steps))


def row_steps(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(optimizer steps per row, how they were found: ``recorded``, ``inferred`` or ``epochs``)."""
    recorded = pd.to_numeric(frame["budget_steps"], errors="coerce") if "budget_steps" in frame.columns else (
        pd.Series(math.nan, index=frame.index))
    params = parameter_frame(frame)
    epochs = pd.to_numeric(frame["epochs_run"], errors="coerce")
    n_train = pd.to_numeric(frame["n_train"], errors="coerce") if "n_train" in frame.columns else epochs * math.nan
    inferred = pd.Series([
        e * steps_per_epoch(n, _number(p.get("batch_size")), _number(p.get("min_steps_per_epoch")))
        if math.isfinite(e) else math.nan
        for e, n, p in zip(epochs, n_train, params.to_dict("records"))], index=frame.index, dtype=float)
    steps = recorded.where(recorded.notna(), inferred)
    source = pd.Series(np.where(recorded.notna(), "recorded", np.where(inferred.notna(), "inferred", "epochs")),
                       index=frame.index)
    return steps.astype(float), source


def _sum(values: pd.Series) -> float:
    finite = values[np.isfinite(values.to_numpy(float))]
    return float(finite.sum()) if len(finite) else math.nan


def budget_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The cost of every strategy's result, search included (a ``tables.normalize``d frame, all roles).

    Args:
        frame: results rows of every role.

    Returns:
        One row per task × backbone × strategy × fraction with a final run (columns ``COLUMNS``). ``note`` is
        empty for searched strategies, else ``NOT_SEARCHED`` (other strategies of the task were searched) or
        ``SINGLE`` (nothing in these results was searched). Wall times sum every row, failed ones too: their
        time was spent.
    """
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    role = frame["role"].where(~is_final(frame), FINAL).fillna(FINAL).astype(str)
    steps, source = row_steps(frame)
    work = frame.assign(_role=role, _steps=steps, _source=source,
                        _epochs=pd.to_numeric(frame["epochs_run"], errors="coerce"),
                        _wall=pd.to_numeric(frame["wall_time_s"], errors="coerce"),
                        _trial=pd.to_numeric(frame["trial"], errors="coerce") if "trial" in frame.columns else math.nan,
                        _selected=frame["selected_from"] if "selected_from" in frame.columns else None)
    work = work[work["_role"].isin([SEARCH, FINAL])]
    searched_tasks = set(work.loc[work["_role"] == SEARCH, "task"])
    rows = []
    for (task, backbone, strategy, fraction), cells in work.groupby(GROUP[:2] + ["strategy", "fraction"],
                                                                    dropna=False, sort=False):
        search, final = cells[cells["_role"] == SEARCH], cells[cells["_role"] == FINAL]
        if final.empty:
            continue  # a search without its final runs yet: the table reports results that exist
        trials = search["_trial"].dropna().nunique() if search["_trial"].notna().any() else len(search)
        sources = set(cells["_source"])
        selected = sorted({str(v) for v in final["_selected"].dropna() if str(v).strip()})
        note = "" if len(search) else (NOT_SEARCHED if task in searched_tasks else SINGLE)
        rows.append({
            "task": task, "backbone": backbone, "strategy": strategy, "fraction": fraction,
            "search_trials": int(trials), "search_runs": len(search), "final_runs": len(final),
            "search_steps": _sum(search["_steps"]) if len(search) else 0.0, "final_steps": _sum(final["_steps"]),
            "search_epochs": _sum(search["_epochs"]) if len(search) else 0.0, "final_epochs": _sum(final["_epochs"]),
            "steps_source": "epochs" if "epochs" in sources else ("inferred" if "inferred" in sources else "recorded"),
            "search_wall_time_s": _sum(search["_wall"]) if len(search) else 0.0,
            "final_wall_time_s": _sum(final["_wall"]), "selected_from": ", ".join(selected), "note": note,
        })
    table = pd.DataFrame(rows, columns=COLUMNS)
    if table.empty:
        return table
    table["total_steps"] = table["search_steps"].fillna(0) + table["final_steps"]
    table["total_wall_time_s"] = table["search_wall_time_s"].fillna(0) + table["final_wall_time_s"]
    key = table["strategy"].map(strategy_sort_key)
    return (table.assign(_k=key).sort_values(["task", "backbone", "fraction", "_k"], kind="stable")
            .drop(columns="_k").reset_index(drop=True))
