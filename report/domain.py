"""Domain adaptation table: per target task and source, every method against source-only, from results rows only.

Rows of strategies that learn from a second task carry ``source_task``. For each (target task, source, backbone,
label fraction) the table lists each method's mean main metric over seeds with its t-interval, and its gain over
``source-only`` (the lower anchor: no target label) with a Welch interval (``bench.results.seedstats``).
``from-scratch`` rows (no source) join every source of their task as the "target labels only" reference. DANN
cells without target labels (``target_labels: false``) are their own method, "dann (unsupervised)".
"""

from __future__ import annotations

import json
import math

import pandas as pd

from bench.results import seedstats as stats
from report.vocabulary import BASELINE, final_only

ANCHOR = "source-only"
COLUMNS = ["task", "source_task", "backbone", "fraction", "method", "n", "mean", "low", "high", "gain", "gain_low",
           "gain_high"]


def _params(value) -> dict:
    if isinstance(value, dict):
        return value
    return json.loads(value) if isinstance(value, str) and value else {}


def _method(row: pd.Series) -> str:
    if row["strategy"] == "dann" and _params(row.get("params")).get("target_labels") is False:
        return "dann (unsupervised)"
    return str(row["strategy"])


def domain_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, source_task, backbone, fraction, method); empty when no row has a source task."""
    if "source_task" not in frame.columns or frame["source_task"].isna().all():
        return pd.DataFrame(columns=COLUMNS)
    ok = frame[frame["status"] == "ok"].copy()
    ok = final_only(ok)  # hyperparameter-search trials are not results
    metric = ok.get("main_metric", pd.Series("accuracy", index=ok.index)).fillna("accuracy")
    ok["score"] = [row[m] for (_, row), m in zip(ok.iterrows(), metric)]
    ok["method"] = [_method(row) for _, row in ok.iterrows()]
    out = []
    for (task, source, backbone), group in ok[ok["source_task"].notna()].groupby(["task", "source_task", "backbone"]):
        reference = ok[(ok["task"] == task) & (ok["backbone"] == backbone) & (ok["strategy"] == BASELINE)]
        rows = pd.concat([group, reference])
        anchor_any = group.loc[group["method"] == ANCHOR, "score"]
        for fraction, at in rows.groupby("fraction"):
            anchor = at.loc[at["method"] == ANCHOR, "score"]
            anchor = anchor if len(anchor) else anchor_any  # source-only ignores the fraction
            for method, cells in at.groupby("method"):
                ci = stats.mean_ci(cells["score"])
                gain = stats.welch_difference(cells["score"], anchor) if method != ANCHOR and len(anchor) else None
                out.append([task, source, backbone, float(fraction), method, ci.n, ci.mean, ci.low, ci.high,
                            gain.diff if gain else math.nan, gain.low if gain else math.nan,
                            gain.high if gain else math.nan])
    table = pd.DataFrame(out, columns=COLUMNS)
    return table.sort_values(["task", "source_task", "backbone", "fraction", "mean"],
                             ascending=[True, True, True, True, False], ignore_index=True)
