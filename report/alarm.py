"""The alarm row: a final configuration that scores far below the search trial it was selected from.

A hyperparameter search picks the trial with the best validation score; the final runs repeat that configuration
on every seed. When a final run lands far below the trial's validation score, the search's winner did not
survive a rerun (a lucky trial, a diverging seed, a learning rate on the edge: Elevater's "sweep winner
collapses in the final run"), and the reported number is not the configuration the search saw.

The rule, per final configuration (the finals sharing one ``selected_from`` trial):

- trial score ``p`` = the trial's validation main metric (accuracy, or macro-F1 where that is the task's);
- each final seed's validation main metric ``v_s``, its test main metric ``t_s``;
- margin on validation = ``max(FLOOR, Z · sqrt(p(1-p) · (1/n_val,trial + 1/n_val,final)))``: at least
  ``FLOOR`` (5 points) and at least ``Z`` (3) binomial standard errors of the difference of two scores on
  ``n_val`` examples each (the final's seed draws its own validation split). The floor absorbs the seed-to-seed
  spread of training, which binomial noise does not include, and the selection bias of the winning trial.
- **alarm** when the worst seed's ``v_s < p − margin`` (one collapsed seed is enough; the table says which).
- ``test_below``: the mean test score is also below ``p`` by more than the margin computed with ``n_test``;
  reported beside the alarm (validation and test differ by a split, so only validation raises it).

Rows without a ``selected_from`` (no search), or whose trial is not recorded, are not checked.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.results.roles import FINAL, is_role
from report.vocabulary import GROUP, SEARCH, strategy_sort_key

Z = 3.0
FLOOR = 0.05

COLUMNS = GROUP + ["strategy", "main_metric", "selected_from", "trial", "trial_val", "trial_n_val", "n",
                   "final_val_mean", "final_val_min", "worst_seed", "final_test_mean", "n_val", "n_test", "margin",
                   "gap", "alarm", "test_below"]


def _number(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def _scores(frame: pd.DataFrame) -> pd.DataFrame:
    """``_val`` and ``_test`` main-metric scores and ``_n_val``/``_n_test`` per row."""
    macro = frame["main_metric"].fillna("accuracy") == "macro_f1"
    return frame.assign(_val=_number(frame, "val_macro_f1").where(macro, _number(frame, "val_accuracy")),
                        _test=_number(frame, "macro_f1").where(macro, _number(frame, "accuracy")),
                        _n_val=_number(frame, "n_val"), _n_test=_number(frame, "n_test"))


def margin(p: float, n_a: float, n_b: float) -> float:
    """``max(FLOOR, Z · binomial standard error of a difference of two scores on n_a and n_b examples)``; the
    floor alone when a size is unknown."""
    if not (math.isfinite(p) and math.isfinite(n_a) and math.isfinite(n_b) and n_a > 0 and n_b > 0):
        return FLOOR
    p = min(max(p, 0.0), 1.0)
    return max(FLOOR, Z * math.sqrt(p * (1 - p) * (1 / n_a + 1 / n_b)))


def alarm_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per searched final configuration: the trial's validation score, the finals' scores, the margin
    and whether the alarm is raised (see the module docstring).

    Args:
        rows: normalised results of every role (``tables.normalize``): search trials and finals.
    """
    if rows.empty or "selected_from" not in rows.columns:
        return pd.DataFrame(columns=COLUMNS)
    rows = _scores(rows)
    ok = rows[rows["status"] == "ok"]
    trials = ok[is_role(ok, SEARCH)].drop_duplicates("cell", keep="last").set_index("cell")
    finals = ok[is_role(ok, FINAL) & ok["selected_from"].notna()]
    out = []
    for (*group, strategy, selected), cells in finals.groupby(GROUP + ["strategy", "selected_from"], dropna=False,
                                                              sort=False):
        if selected not in trials.index:
            continue
        trial = trials.loc[selected]
        p = float(trial["_val"])
        if not math.isfinite(p):
            continue
        val = cells["_val"]
        if not val.notna().any():
            continue
        worst = val.idxmin()
        n_val = float(cells.loc[worst, "_n_val"])
        edge = margin(p, float(trial["_n_val"]), n_val)
        test_mean = float(cells["_test"].mean())
        n_test = float(cells["_n_test"].sum())
        test_edge = margin(p, float(trial["_n_val"]), n_test)
        out.append({**dict(zip(GROUP, group)), "strategy": strategy, "main_metric": trial["main_metric"] or "accuracy",
                    "selected_from": selected, "trial": trial.get("trial"), "trial_val": p,
                    "trial_n_val": float(trial["_n_val"]), "n": int(val.notna().sum()),
                    "final_val_mean": float(val.mean()), "final_val_min": float(val[worst]),
                    "worst_seed": float(cells.loc[worst, "seed"]), "final_test_mean": test_mean, "n_val": n_val,
                    "n_test": n_test, "margin": edge, "gap": p - float(val[worst]),
                    "alarm": bool(val[worst] < p - edge),
                    "test_below": bool(math.isfinite(test_mean) and test_mean < p - test_edge)})
    table = pd.DataFrame(out, columns=COLUMNS)
    if table.empty:
        return table
    key = table["strategy"].map(strategy_sort_key)
    return (table.assign(_k=key).sort_values(["task", "backbone", "fraction", "_k"], kind="stable")
            .drop(columns="_k").reset_index(drop=True))
