"""The verdict in the terminal (for CI logs): one rich table per group, the average ranks, the sentences.

rich renders plain text with ASCII-safe boxes when the output is not a terminal, so the same call serves an
interactive shell and a CI log.
"""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from report.vocabulary import Predictions
from report.verdict import Verdict, compute_verdict, fraction_label


def _num(x: float, digits: int = 3, signed: bool = False) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _verdict_text(significant: bool | None, rank: int, status: str) -> str:
    if rank == 1:
        return "best"
    if significant is None:
        return "undecided (1 seed, n_test unknown)" if status != "single" else ""
    return "below (significant)" if significant else "tied for best"


def _interval(low: float, high: float, signed: bool = False) -> str:
    return f" [{_num(low, signed=signed)}, {_num(high, signed=signed)}]" if math.isfinite(low) else ""


def group_tables(verdict: Verdict) -> list[Table]:
    """One table per task × backbone × fraction, strategies best first."""
    out = []
    for g in verdict.groups:
        title = f"{g.task} · {g.backbone} · {fraction_label(g.fraction)} ({g.metric})"
        if g.status == "undecided":
            title += " — undecided: one seed, no predictions or test size"
        elif g.status == "decided":
            title += " — paired on test examples" if g.paired else " — unpaired (no per-example predictions)"
        table = Table(title=Text(title), title_justify="left")
        for name, justify in (("#", "right"), ("strategy", "left"), ("mean [95% interval]", "right"),
                              ("n (seeds × test)", "right"), ("Δ vs best [95% interval]", "right"),
                              ("p (Holm)", "right"), ("verdict", "left"), ("time × best", "right")):
            table.add_column(name, justify=justify)
        for r in g.results:
            table.add_row(str(r.rank), Text(r.strategy), _num(r.mean) + _interval(r.low, r.high), r.n_label(),
                          "" if r.rank == 1 else _num(r.diff, signed=True) + _interval(r.diff_low, r.diff_high, True),
                          _num(r.p), _verdict_text(r.significant, r.rank, g.status), _num(r.cost_ratio, 2))
        out.append(table)
    return out


def ranks_table(verdict: Verdict) -> Table:
    """Average rank per strategy (rows) and label fraction (columns), with the rank test below."""
    table = Table(title="Average rank (1 = best)", title_justify="left")
    table.add_column("strategy")
    for column in verdict.ranks.columns:
        table.add_column(str(column), justify="right")
    for strategy, row in verdict.ranks.iterrows():
        table.add_row(Text(str(strategy)), *[_num(v, 2) for v in row])
    tests = list(verdict.friedman.values())
    table.add_section()
    table.add_row("groups", *[str(t.blocks) for t in tests])
    table.add_row("test p", *[f"{t.test} {t.p:.3g}" if t.tested else "not tested" for t in tests])
    table.add_row("CD (Nemenyi)", *[_num(t.cd, 2) for t in tests])
    return table


def print_summary(frame: pd.DataFrame | Verdict, console: Console | None = None,
                  predictions: Predictions | None = None) -> Verdict:
    """Print the verdict for a results frame (or an already computed ``Verdict``).

    Args:
        frame: results rows as ``bench.results.load_results`` returns them, or a ``Verdict``.
        console: where to print; default a new ``rich.console.Console`` on stdout.
        predictions: cell key → ``CellPredictions``: intervals and tests paired on test examples.

    Returns:
        The verdict that was printed.
    """
    verdict = frame if isinstance(frame, Verdict) else compute_verdict(frame, predictions=predictions)
    console = console or Console()
    for table in group_tables(verdict):
        console.print(table)
    if len(verdict.ranks.columns):
        console.print(ranks_table(verdict))
    for line in verdict.sentences:
        console.print(Text(line))  # Text: a strategy named "[bold]" must not be read as markup
    return verdict
