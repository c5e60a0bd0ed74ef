"""The verdict section of the HTML page: sentences, the per-group ranking, the average ranks, the probability of
beating, the CD diagram; and the label-budget crossover section.

Built from the same ``cells.Table`` / ``figkit.Plot`` pieces as the rest of the page, so the template prints it
with its ``table`` macro and autoescaping (nothing is marked safe).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from report import crossover, figkit
from report.cells import TableCell, Table, sort_key, num
from report.tables import ReportTables
from report.verdict import ALPHA, Verdict, compute_verdict, fraction_label


def _verdict_cell(significant: bool | None, rank: int, status: str, p: float) -> TableCell:
    if rank == 1:
        return TableCell("best", "0", cls="best")
    if significant is None:
        return TableCell("undecided", "", "one seed, and no predictions or test size to resample") if (
            status != "single") else TableCell("—")
    sub = f"p = {num(p)} (Holm)"
    return TableCell("below", "2", sub, "neg", "significantly below the best") if significant else TableCell(
        "tied for best", "1", sub, title="gap to the best within noise (seeds and test examples)")


def _interval(low: float, high: float, signed: bool = False) -> str:
    return f" [{num(low, signed=signed)}, {num(high, signed=signed)}]" if math.isfinite(low) else ""


def ranking_table(verdict: Verdict) -> Table:
    """Every group's strategies, best first, with the gap to the best and its test."""
    headers = [("task", ""), ("backbone", ""), ("fraction", ""), ("#", "rank by mean main metric"),
               ("strategy", ""),
               ("mean", "main metric, mean over seeds [95% bootstrap interval over seeds and test examples]"),
               ("n", "seeds × test examples"),
               ("Δ vs best", "mean − best mean [95% bootstrap interval; paired on test examples when predictions "
                "were kept]"),
               ("verdict", f"below the best by the bootstrap test, two-sided, Holm-adjusted within the group, at "
                           f"{ALPHA}"),
               ("time × best", "mean wall time relative to the best strategy of the group")]
    rows = []
    for g in verdict.groups:
        for r in g.results:
            pairing = "paired" if g.paired else "unpaired"
            rows.append([TableCell(g.task, g.task), TableCell(g.backbone, g.backbone),
                         TableCell(f"{g.fraction:g}", sort_key(g.fraction)), TableCell(str(r.rank), str(r.rank)),
                         TableCell(r.strategy, r.strategy),
                         TableCell(num(r.mean) + _interval(r.low, r.high), sort_key(r.mean), g.metric, title=r.method),
                         TableCell(r.n_label(), str(r.n), r.method),
                         TableCell("" if r.rank == 1 else num(r.diff, signed=True)
                                   + _interval(r.diff_low, r.diff_high, True),
                                   sort_key(r.diff), "" if r.rank == 1 or not math.isfinite(r.diff_low) else pairing),
                         _verdict_cell(r.significant, r.rank, g.status, r.p),
                         TableCell(num(r.cost_ratio, 2) + "×" if math.isfinite(r.cost_ratio) else "—",
                                   sort_key(r.cost_ratio))])
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
        rows.append([TableCell(str(strategy), str(strategy))] + [TableCell(num(v, 2), sort_key(v)) for v in values])
    rows.append([TableCell("rank test p")] + [TableCell(f"{t.p:.3g}" if t.tested else "not tested", sort_key(t.p),
                                                        t.test if t.tested else t.reason) for t in tests])
    rows.append([TableCell("critical difference")] + [TableCell(num(t.cd, 2), sort_key(t.cd)) for t in tests])
    return Table("Average rank over the complete groups (1 = best)", headers, rows)


def beats_tables(verdict: Verdict) -> list[Table]:
    """Per fraction: P(row strategy beats column strategy), from the groups' bootstraps averaged over groups."""
    out = []
    for fraction, matrix in verdict.beats.items():
        if matrix.empty:
            continue
        headers = [("strategy", "")] + [(f"beats {c}", f"probability that the row strategy scores above {c}, "
                                         "averaged over the groups where both ran") for c in matrix.columns]
        rows = [[TableCell(str(a), str(a))] + [TableCell(num(v, 2), sort_key(v)) for v in values]
                for a, values in matrix.iterrows()]
        tied = pd.Series([s for g in verdict.groups if g.fraction == fraction or (
            math.isnan(fraction) and math.isnan(g.fraction)) for s in g.tied]).value_counts()
        groups = sum(1 for g in verdict.groups if g.fraction == fraction or (
            math.isnan(fraction) and math.isnan(g.fraction)))
        headers.append(("tied for best", "groups where it is the best or not significantly below it"))
        for row in rows:
            count = int(tied.get(row[0].text, 0))
            row.append(TableCell(f"{count} of {groups}", str(count)))
        out.append(Table(f"Probability of beating, {fraction_label(fraction)}", headers, rows))
    return out


def cd_figure(verdict: Verdict):
    """A critical-difference diagram per tested fraction (scikit-posthocs), or None if nothing was tested.

    Returns a ``matplotlib.figure.Figure`` on the Agg canvas; no pyplot state is touched (the axes are given).
    """
    import scikit_posthocs as sp  # imports pyplot: only load it when the diagram is drawn
    tested = [t for t in verdict.friedman.values() if t.tested]
    if not tested:
        return None
    colors = figkit.strategy_colors([s for t in tested for s in t.strategies])
    k = max(len(t.strategies) for t in tested)
    fig = Figure(figsize=(8, (0.9 + 0.3 * k) * len(tested) + 0.3))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(tested), 1, squeeze=False)[:, 0]
    for ax, test in zip(axes, tested):
        sig = test.nemenyi if test.nemenyi is not None else pd.DataFrame(  # not significant: nothing differs
            1.0, index=test.strategies, columns=test.strategies)
        sp.critical_difference_diagram(test.mean_ranks, sig, cd=test.cd, alpha=ALPHA, ax=ax,
                                       label_props={"fontsize": 8},
                                       color_palette={s: colors[s] for s in test.mean_ranks.index})
        ax.tick_params(labelsize=7)
        ax.set_title(f"{fraction_label(test.fraction)}: {test.test} p = {test.p:.3g}, {test.blocks} groups",
                     fontsize=9, pad=22)
    fig.subplots_adjust(left=0.25, right=0.75, hspace=1.0, top=0.85)
    return fig


def cd_alt_text(verdict: Verdict) -> str:
    """What the CD diagram shows, in words (for screen readers and the HTML source)."""
    parts = []
    for test in verdict.friedman.values():
        if test.tested:
            order = ", ".join(f"{s} {r:.2f}" for s, r in test.mean_ranks.sort_values().items())
            parts.append(f"at {fraction_label(test.fraction)}: {order} (CD {test.cd:.2f}, {test.test} p "
                         f"{test.p:.3g})")
    return ("Critical-difference diagram: average rank of each strategy over the groups (1 = best), strategies "
            "joined by a bar are not significantly different (Nemenyi). " + "; ".join(parts) + ".")


def section(frame: pd.DataFrame, verdict: Verdict | None = None) -> dict[str, Any]:
    """What the template's verdict section shows, from a (normalised) results frame or its computed verdict."""
    verdict = verdict if verdict is not None else compute_verdict(frame)
    plot = None
    with figkit.style():  # the report's look, and strategy names printed as text, never as TeX
        fig = cd_figure(verdict)
        if fig is not None:
            plot = figkit.Plot("verdict", "Critical-difference diagram of average ranks", cd_alt_text(verdict),
                                figkit.to_data_uri(fig))
    return {"sentences": verdict.sentences, "alpha": verdict.alpha, "ranking": ranking_table(verdict),
            "ranks": ranks_table(verdict) if len(verdict.ranks.columns) else None, "cd": plot,
            "beats": beats_tables(verdict)}


def crossover_section(data: ReportTables) -> dict[str, Any] | None:
    """The crossover section: its sentences and the per-fraction table (None when no group has a probe and a
    fine-tuning strategy)."""
    table, summary = data.crossover, data.crossover_summary
    if table is None or table.empty:
        return None
    headers = [("task", ""), ("backbone", ""), ("strategy", "fine-tuning strategy"), ("fraction", ""),
               ("mean", "its mean main metric"), ("probe", "feature-extraction's mean"),
               ("Δ vs probe", "strategy − probe [95% bootstrap interval]"), ("p", "two-sided bootstrap p"),
               ("P(beats probe)", "bootstrap probability of scoring above the probe"),
               ("n", "seeds (strategy / probe) × test examples"), ("", "where the crossover starts")]
    rows = [[TableCell(r.task, r.task), TableCell(r.backbone, r.backbone), TableCell(r.strategy, r.strategy),
             TableCell(f"{r.fraction:g}", sort_key(r.fraction)), TableCell(num(r.mean), sort_key(r.mean)),
             TableCell(num(r.probe_mean), sort_key(r.probe_mean)),
             TableCell(num(r.diff, signed=True) + _interval(r.diff_low, r.diff_high, True), sort_key(r.diff),
                       "paired" if r.paired else "unpaired", "pos" if r.ahead else ""),
             TableCell(num(r.p), sort_key(r.p)), TableCell(num(r.p_beats_probe, 2), sort_key(r.p_beats_probe)),
             TableCell(f"{r.n}/{r.n_probe} × {r.n_test}" if r.n_test else f"{r.n}/{r.n_probe}", str(r.n)),
             TableCell("crossover" if r.crossover else "", "1" if r.crossover else "0",
                       cls="best" if r.crossover else "")]
            for r in table.itertuples()]
    return {"sentences": crossover.sentences(summary),
            "table": Table("Fine-tuning vs the probe per label fraction", headers, rows)}
