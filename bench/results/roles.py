"""Which rows each part of the report reads, by the ``role`` column of the results.

``final`` rows (the selected configuration on every seed) carry the report's numbers; ``search`` rows (trials)
feed the budget and sensitivity views; ``estimate`` rows the transferability section. A frame without a ``role``
column, and a missing or empty role, mean final: rows recorded before roles existed.
"""

from __future__ import annotations

import math

import pandas as pd

FINAL = "final"  # the selected configuration on every seed: the report's numbers
SEARCH = "search"  # a hyperparameter-search trial (bench.plan.rounds)
RACE = "race"  # a trial of advise's pruned race (bench.advise.race)
ESTIMATE = "estimate"  # a transferability score, no training (bench.run.estimate)
PRETRAIN = "pretrain"  # a source-pretraining run, RESULTS/pretrain/*.json, not a cell (bench.run.pretrain)
TRIALS = (SEARCH, RACE)  # roles whose rows are trials: numbered, each its own cell


def roles(frame: pd.DataFrame) -> pd.Series:
    """Each row's role as a string (``final`` where it is missing or empty)."""
    if "role" not in frame.columns:
        return pd.Series(FINAL, index=frame.index)
    role = frame["role"].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip())
    return role.where(role != "", FINAL)


def is_role(frame: pd.DataFrame, role: str) -> pd.Series:
    return roles(frame) == role


def is_final(frame: pd.DataFrame) -> pd.Series:
    return is_role(frame, FINAL)


def final_only(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``final`` rows of a results frame, index kept."""
    return frame[is_final(frame)]
