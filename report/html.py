"""Render the report page: tables become display rows, figures data URIs, all through one jinja2 template.

Autoescaping is on for everything the template prints, so any string that came from results (task names, error
messages, package versions) shows as text; no value is ever marked safe. Rendering is a pure function of the
results frame and ``meta``: the same inputs give the same page, byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import pandas as pd

from bench.results import seedstats as stats
from report import tables
from report.figkit import strategy_colors
from report.sections import budget, domain, estimates, figures, perexample, sensitivity, verdict
from report.sections.results import leaderboard_table, pretraining_table, status_table, transfer_table

TEMPLATES = Path(__file__).parent / "templates"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["urlquote"] = lambda s: quote(str(s))
    return env


def context(data: tables.ReportTables, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the template shows, from the computed tables and ``meta`` (see ``report.render_html``)."""
    meta = dict(meta or {})
    summary, board, metrics, norm = data.summary, data.leaderboard, data.transfer, data.frame
    tasks = sorted(set(board["task"]))
    missing = metrics.loc[~metrics["baseline"].astype(bool), tables.GROUP].drop_duplicates()
    every_row = data.all_rows if data.all_rows is not None else norm
    return {
        "title": "transferbench report" + (f" — {', '.join(summary['suites'])}" if summary["suites"] else ""),
        "meta": meta, "summary": summary,
        "leaderboards": [leaderboard_table(t, board[board["task"] == t]) for t in tasks],
        "transfer": [transfer_table(t, metrics[metrics["task"] == t]) for t in sorted(set(metrics["task"]))],
        "has_baseline": bool((norm["strategy"] == tables.BASELINE).any()),
        "missing_baseline": [f"{r.task} · {r.backbone} · fraction {r.fraction:g}" for r in missing.itertuples()],
        "figures": figures.all_figures(norm, board, data.curves) + figures.gain_vs_depth_plot(data.depth),
        "pretraining": pretraining_table(meta.get("pretraining") or []),
        "domain": domain.html_tables(data.domain),
        "errors": status_table("Failed cells", data.errors),
        "skipped": status_table("Skipped cells (by design: the strategy does not apply)", data.skipped),
        "stats": {"slope_epochs": stats.SLOPE_EPOCHS, "threshold": stats.THRESHOLD_FRACTION,
                  "alpha": stats.NEGATIVE_TRANSFER_ALPHA, "confidence": stats.CONFIDENCE},
        "exports": meta.get("exports", {}),
        "verdict": verdict.section(norm, data.verdict),
        "crossover": verdict.crossover_section(data),
        "estimates": estimates.section(data.estimates) if data.estimates is not None else None,
        "budget": budget.html_tables(data.budget) if data.budget is not None else [],
        "sensitivity": sensitivity.sensitivity_plots(every_row, strategy_colors(list(every_row["strategy"]))),
        **_per_example(data, norm),
    }


def _per_example(data: tables.ReportTables, norm: pd.DataFrame) -> dict[str, Any]:
    """The confusion/calibration section and the search-vs-final alarm (report.sections.perexample)."""
    return {"per_example": perexample.section(data.per_example, strategy_colors(list(norm["strategy"]))),
            "alarm": perexample.alarm_section(data.alarms)}


def render(data: tables.ReportTables, meta: dict[str, Any] | None = None) -> str:
    """The HTML page for computed tables (pure: no clock, no file access beyond the packaged template)."""
    return _environment().get_template("report.html.j2").render(**context(data, meta))
