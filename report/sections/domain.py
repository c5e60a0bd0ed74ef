"""The page's domain-adaptation section: ``report.domain.domain_table`` as one page table per source → target."""

from __future__ import annotations

import math

import pandas as pd

from report.cells import TableCell, Table


def _pct(mean: float, low: float, high: float) -> str:
    if not math.isfinite(mean):
        return ""
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def html_tables(table: pd.DataFrame) -> list[Table]:
    """One page table per source → target × backbone of ``report.domain.domain_table`` (none when it is empty)."""
    out = []
    headers = [("fraction", "share of the target's training labels"), ("method", ""), ("n", "seeds"),
               ("score", "main metric on the target's test split, % (mean over seeds [95 % CI])"),
               ("gain vs source-only", "points, with a Welch 95 % interval")]
    for (task, source, backbone), rows in table.groupby(["task", "source_task", "backbone"]):
        body = []
        for _, r in rows.iterrows():
            gain = "" if not math.isfinite(r["gain"]) else (
                f"{100 * r['gain']:+.1f}" + (f" [{100 * r['gain_low']:+.1f}, {100 * r['gain_high']:+.1f}]"
                                             if math.isfinite(r["gain_low"]) else ""))
            body.append([TableCell(f"{r['fraction']:g}"), TableCell(str(r["method"])), TableCell(str(r["n"])),
                         TableCell(_pct(r["mean"], r["low"], r["high"])), TableCell(gain)])
        out.append(Table(f"{source} → {task} ({backbone})", headers, body))
    return out
