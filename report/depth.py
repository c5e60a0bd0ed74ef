"""Transfer gain versus network depth (the lectures' shallow-vs-deep question), from results rows only.

Rows of source-pretrained backbones carry a ``depth`` column (the timm architecture's depth). For each task,
strategy, label fraction and depth, the gain is ``mean(strategy) − mean(from-scratch)`` over seeds of the main
metric, with a Welch confidence interval (``bench.results.seedstats``); the figure draws one panel per fraction,
gain against depth, one line per strategy, a zero line for "no transfer gain".
"""

from __future__ import annotations


import pandas as pd

from bench.results import seedstats as stats
from report.vocabulary import BASELINE



def transfer_gain_by_depth(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, strategy, fraction, depth): ``gain``, ``low``, ``high``, ``n`` (seeds of the strategy).

    Only ``ok`` rows with a depth count; the metric is each row's ``main_metric`` (accuracy by default).
    """
    cols = ["task", "strategy", "fraction", "depth", "backbone", "gain", "low", "high", "n"]
    if "depth" not in frame.columns:
        return pd.DataFrame(columns=cols)
    ok = frame[(frame["status"] == "ok") & frame["depth"].notna()].copy()
    if ok.empty:
        return pd.DataFrame(columns=cols)
    metric = ok.get("main_metric", pd.Series("accuracy", index=ok.index)).fillna("accuracy")
    ok["score"] = [row[m] for (_, row), m in zip(ok.iterrows(), metric)]
    out = []
    for (task, depth, backbone), group in ok.groupby(["task", "depth", "backbone"]):
        for fraction, at in group.groupby("fraction"):
            base = at.loc[at["strategy"] == BASELINE, "score"]
            if base.empty:
                continue
            for strategy, rows in at[at["strategy"] != BASELINE].groupby("strategy"):
                d = stats.welch_difference(rows["score"], base)
                out.append([task, strategy, float(fraction), int(depth), backbone, d.diff, d.low, d.high, d.n_a])
    return pd.DataFrame(out, columns=cols).sort_values(["task", "fraction", "strategy", "depth"], ignore_index=True)
