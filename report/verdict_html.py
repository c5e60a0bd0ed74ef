"""The verdict section of the HTML page: sentences, the per-group ranking, the average ranks, the CD diagram.

Built from the same ``html.Table`` / ``figures.Plot`` pieces as the rest of the page, so the template prints it
with its ``table`` macro and autoescaping (nothing is marked safe).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from report import figures
from report.html import Cell, Table, _key, num
from report.verdict import ALPHA, Verdict, cd_alt_text, cd_figure, compute_verdict, fraction_label


def _verdict_cell(significant: bool | None, rank: int, status: str, p: float) -> Cell:
    if rank == 1:
        return Cell("best", "0", cls="best")
    if significant is None:
        return Cell("undecided", "", "needs ≥ 2 seeds on both sides") if status != "single" else Cell("—")
    sub = f"p = {num(p)} (Holm)"
    return Cell("below", "2", sub, "neg", "significantly below the best") if significant else Cell(
        "within noise", "1", sub)


def ranking_table(verdict: Verdict) -> Table:
    """Every group's strategies, best first, with the gap to the best and its test."""
    headers = [("task", ""), ("backbone", ""), ("fraction", ""), ("#", "rank by mean main metric"),
               ("strategy", ""), ("mean", "main metric, mean ± 95% CI half-width over seeds"), ("n", "seeds"),
               ("Δ vs best", "mean − best mean"),
               ("verdict", f"below the best by Welch's test, two-sided, Holm-adjusted within the group, at {ALPHA}"),
               ("time × best", "mean wall time relative to the best strategy of the group")]
    rows = []
    for g in verdict.groups:
        for r in g.results:
            interval = f" ± {num((r.high - r.low) / 2)}" if math.isfinite(r.low) else ""
            rows.append([Cell(g.task, g.task), Cell(g.backbone, g.backbone),
                         Cell(f"{g.fraction:g}", _key(g.fraction)), Cell(str(r.rank), str(r.rank)),
                         Cell(r.strategy, r.strategy), Cell(num(r.mean) + interval, _key(r.mean), g.metric),
                         Cell(str(r.n), str(r.n)), Cell("" if r.rank == 1 else num(r.diff, signed=True),
                                                        _key(r.diff)),
                         _verdict_cell(r.significant, r.rank, g.status, r.p),
                         Cell(num(r.cost_ratio, 2) + "×" if math.isfinite(r.cost_ratio) else "—",
                              _key(r.cost_ratio))])
    return Table("Ranking per task · backbone · label fraction", headers, rows)


def ranks_table(verdict: Verdict) -> Table:
    """Average rank per strategy and fraction, the omnibus test's p and the Nemenyi critical difference."""
    tests = list(verdict.friedman.values())
    headers = [("strategy", "")] + [(fraction_label(t.fraction),
                                     f"{t.blocks} complete groups; " + (f"{t.test} p = {t.p:.3g}, CD = {t.cd:.2f}"
                                                                        if t.tested else t.reason))
                                    for t in tests]
    rows = []
    for strategy, values in verdict.ranks.iterrows():
        rows.append([Cell(str(strategy), str(strategy))] + [Cell(num(v, 2), _key(v)) for v in values])
    rows.append([Cell("rank test p")] + [Cell(f"{t.p:.3g}" if t.tested else "not tested", _key(t.p),
                                              t.test if t.tested else t.reason) for t in tests])
    rows.append([Cell("critical difference")] + [Cell(num(t.cd, 2), _key(t.cd)) for t in tests])
    return Table("Average rank over the complete groups (1 = best)", headers, rows)


def section(frame: pd.DataFrame) -> dict[str, Any]:
    """What the template's verdict section shows, from a (normalised) results frame."""
    verdict = compute_verdict(frame)
    plot = None
    with figures._style():  # the report's look, and strategy names printed as text, never as TeX
        fig = cd_figure(verdict)
        if fig is not None:
            plot = figures.Plot("verdict", "Critical-difference diagram of average ranks", cd_alt_text(verdict),
                                figures._to_data_uri(fig))
    return {"sentences": verdict.sentences, "alpha": verdict.alpha, "ranking": ranking_table(verdict),
            "ranks": ranks_table(verdict) if len(verdict.ranks.columns) else None, "cd": plot}
