"""Hyperparameter sensitivity: each search trial's validation score against the values it tried.

Read from the ``search`` rows only (final rows ran one selected configuration, they say nothing about
sensitivity). Per task, one panel per hyperparameter that varied between the trials of some strategy (its
``p_<name>`` column, or ``params``), a point per trial, a line through each value's mean, colour = strategy.
The figures are drawn by ``report.sections.sensitivity``.
"""

from __future__ import annotations


import pandas as pd

from report.budget import parameter_frame
from report.vocabulary import SEARCH

SCORE = "val_accuracy"
LOG_SPAN = 10.0  # more than a decade between the smallest and largest value: log axis


def searched(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The finished search rows with one column per parameter, and the parameters that varied between the trials
    of at least one strategy (in name order)."""
    if "role" not in frame.columns or frame.empty:
        return frame.iloc[:0], []
    rows = frame[(frame["role"] == SEARCH) & (frame["status"] == "ok")]
    score = pd.to_numeric(rows[SCORE], errors="coerce") if SCORE in rows.columns else pd.Series(dtype=float)
    rows = rows[score.notna()]
    if rows.empty:
        return rows, []
    params = parameter_frame(rows)
    varied = set()
    for _, idx in rows.groupby("strategy").groups.items():
        for name in params.columns:
            values = params.loc[idx, name].dropna().map(str)
            if values.nunique() > 1:
                varied.add(name)
    names = sorted(varied)
    out = rows[["task", "backbone", "strategy", "fraction", SCORE]].copy()
    for name in names:
        out[f"p_{name}"] = params[name]
    out[SCORE] = pd.to_numeric(out[SCORE], errors="coerce")
    return out.reset_index(drop=True), names


def _numeric(values: pd.Series) -> pd.Series | None:
    """The values as floats if every present one is a number (booleans are categories), else None."""
    present = values.dropna()
    if present.empty or present.map(lambda v: isinstance(v, bool)).any():
        return None
    numbers = pd.to_numeric(present, errors="coerce")
    return pd.to_numeric(values, errors="coerce") if numbers.notna().all() else None
