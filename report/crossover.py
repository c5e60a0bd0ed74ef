"""The label-budget crossover: from which label fraction on does fine-tuning beat the linear probe?

Per task × backbone, every fine-tuning strategy (anything but the probe, from-scratch and zero-shot) is compared
with feature-extraction (the probe) at each label fraction, on the verdict's bootstrap of that group
(``report.verdict``: paired on test examples when the cells kept their predictions). The crossover is the smallest
fraction from which on the fine-tuning strategy is *significantly* ahead (two-sided bootstrap test at the
verdict's level, lower bound of the difference's interval above 0) at that and every larger fraction measured;
``point_crossover`` is the same with "mean ahead" instead, the estimate without the test. A strategy that never
gets there has no crossover (NaN): within this budget range the probe is as good or better.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from report.vocabulary import strategy_sort_key
from report.verdict import Verdict, fraction_label

PROBE = "feature-extraction"
NOT_FINE_TUNING = frozenset({PROBE, "from-scratch", "zero-shot"})

COLUMNS = ["task", "backbone", "strategy", "fraction", "metric", "mean", "probe_mean", "diff", "diff_low",
           "diff_high", "p", "p_beats_probe", "ahead", "paired", "n", "n_probe", "n_test", "crossover"]
SUMMARY_COLUMNS = ["task", "backbone", "strategy", "fractions", "crossover", "diff", "diff_low", "diff_high", "p",
                   "point_crossover", "paired"]


def _order(fraction: float) -> float:
    return fraction if math.isfinite(fraction) else math.inf  # "all labels" (no fraction recorded) comes last


def crossover_table(verdict: Verdict) -> pd.DataFrame:
    """One row per task × backbone × fine-tuning strategy × fraction: the difference to the probe, its 95 %
    interval and p-value, whether it is significantly ahead, and ``crossover`` on the row where it starts."""
    rows: list[dict[str, Any]] = []
    for g in verdict.groups:
        by_name = {r.strategy: r for r in g.results}
        if PROBE not in by_name:
            continue
        probe = by_name[PROBE]
        for r in g.results:
            if r.strategy in NOT_FINE_TUNING:
                continue
            d = g.difference(r.strategy, PROBE)
            if d is None:
                continue
            ahead = bool(math.isfinite(d.p) and d.p < verdict.alpha and d.diff > 0)
            rows.append({"task": g.task, "backbone": g.backbone, "strategy": r.strategy, "fraction": g.fraction,
                         "metric": g.metric, "mean": r.mean, "probe_mean": probe.mean, "diff": d.diff,
                         "diff_low": d.low, "diff_high": d.high, "p": d.p, "p_beats_probe": d.p_beats,
                         "ahead": ahead, "paired": d.paired, "n": r.n, "n_probe": probe.n, "n_test": r.n_test,
                         "crossover": False})
    table = pd.DataFrame(rows, columns=COLUMNS)
    if table.empty:
        return table
    table = table.assign(_f=table["fraction"].map(_order), _s=table["strategy"].map(strategy_sort_key))
    table = table.sort_values(["task", "backbone", "_s", "_f"], kind="stable").drop(columns=["_f", "_s"])
    table = table.reset_index(drop=True)
    for _, part in table.groupby(["task", "backbone", "strategy"], sort=False):
        start = _start(part["ahead"].tolist())
        if start is not None:
            table.loc[part.index[start], "crossover"] = True
    return table


def _start(flags: list[bool]) -> int | None:
    """Index of the first flag from which every later one is also True (None when the last is False)."""
    start = None
    for i in range(len(flags) - 1, -1, -1):
        if not flags[i]:
            break
        start = i
    return start


def crossover_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per task × backbone × fine-tuning strategy: the crossover fraction with the difference's interval
    there (NaN when never significantly ahead), and the point-estimate crossover."""
    rows = []
    for (task, backbone, strategy), part in table.groupby(["task", "backbone", "strategy"], sort=False):
        at = part[part["crossover"]]
        point = _start((part["diff"] > 0).tolist())
        first = at.iloc[0] if len(at) else None
        rows.append({"task": task, "backbone": backbone, "strategy": strategy,
                     "fractions": ", ".join(f"{f:g}" for f in part["fraction"]),
                     "crossover": first["fraction"] if first is not None else math.nan,
                     "diff": first["diff"] if first is not None else math.nan,
                     "diff_low": first["diff_low"] if first is not None else math.nan,
                     "diff_high": first["diff_high"] if first is not None else math.nan,
                     "p": first["p"] if first is not None else math.nan,
                     "point_crossover": part["fraction"].iloc[point] if point is not None else math.nan,
                     "paired": bool(part["paired"].all())})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def sentences(summary: pd.DataFrame) -> list[str]:
    """One plain line per task × backbone × strategy."""
    out = []
    for r in summary.itertuples():
        where = f"On {r.task} · {r.backbone}, {r.strategy}"
        if math.isfinite(r.crossover):
            out.append(f"{where} beats the probe from {fraction_label(r.crossover)} on (Δ {r.diff:+.3f}, 95 % "
                       f"interval [{r.diff_low:+.3f}, {r.diff_high:+.3f}], p = {r.p:.3g}).")
        elif math.isfinite(r.point_crossover):
            out.append(f"{where} is ahead of the probe on average from {fraction_label(r.point_crossover)} on, "
                       "but not significantly at every larger fraction.")
        else:
            out.append(f"{where} does not overtake the probe at the fractions measured ({r.fractions}).")
    return out
