"""Render the report page: tables become display rows, figures data URIs, all through one jinja2 template.

Autoescaping is on for everything the template prints, so any string that came from results (task names, error
messages, package versions) shows as text; no value is ever marked safe. Rendering is a pure function of the
results frame and ``meta``: the same inputs give the same page, byte for byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import pandas as pd

from bench.results import seedstats as stats
from report import figures, tables

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Cell:
    """One table cell: ``text`` to show, ``sort`` key for the sorting script, optional second line and class."""

    text: str
    sort: str = ""
    sub: str = ""
    cls: str = ""
    title: str = ""


@dataclass(frozen=True)
class Table:
    caption: str
    headers: list[tuple[str, str]]  # (label, tooltip)
    rows: list[list[Cell]]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def num(x: Any, digits: int = 3, signed: bool = False) -> str:
    if not _finite(x):
        return "—"
    x = 0.0 if round(x, digits) == 0 else x  # float noise must not print as "-0.000"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def count(x: Any) -> str:
    """Parameter counts: 12.8 k, 4.0 M."""
    if not _finite(x):
        return "—"
    for div, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= div:
            return f"{x / div:.1f}{unit}"
    return f"{x:.0f}"


def seconds(x: Any, signed: bool = False) -> str:
    return "—" if not _finite(x) else f"{num(x, 1, signed)} s"


def _key(x: Any) -> str:
    return repr(float(x)) if _finite(x) else ""


def _text_key(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


def _mean_ci_cell(mean: float, low: float, high: float, n: int, best: bool = False, n_test: Any = 0,
                  method: str = "") -> Cell:
    """``0.812 [0.776, 0.846]`` over ``3 seeds × 500 test``: bootstrap percentile bounds, never "± half-width"
    (the interval is not symmetric near 0 or 1)."""
    if not _finite(mean):
        return Cell("—")
    size = f"{n} seed{'' if n == 1 else 's'}" + (f" × {n_test:.0f} test" if _finite(n_test) and n_test else "")
    if not _finite(low):
        return Cell(num(mean), _key(mean), f"{size}, no interval", "best" if best else "", method)
    return Cell(f"{num(mean)} [{num(low)}, {num(high)}]", _key(mean), size, "best" if best else "",
                "; ".join(filter(None, ["best in this task / backbone / fraction" if best else "",
                                        f"95% bootstrap interval over {method}" if method else ""])))


def leaderboard_table(task: str, board: pd.DataFrame) -> Table:
    headers = [("backbone", ""), ("strategy", ""), ("fraction", "fraction of training labels"),
               ("n", "finished seeds (failed / skipped)"),
               ("accuracy", "test accuracy, mean over seeds [95% bootstrap interval over seeds and test examples]"),
               ("macro-F1", "test macro-F1, mean [95% bootstrap interval over seeds and test examples]"),
               ("wall time", "mean wall time per cell"),
               ("trainable", "trainable parameters (median over seeds)"), ("total", "total parameters")]
    rows = []
    for r in board.itertuples():
        extra = ", ".join(f"{k} {v}" for k, v in (("failed", r.failed), ("skipped", r.skipped)) if v)
        rows.append([
            Cell(r.backbone, r.backbone), Cell(r.strategy, r.strategy), Cell(f"{r.fraction:g}", _key(r.fraction)),
            Cell(str(r.n), str(r.n), extra, "warn" if r.failed else ""),
            _mean_ci_cell(r.accuracy_mean, r.accuracy_ci_low, r.accuracy_ci_high, r.n, r.best_accuracy,
                          r.n_test, r.interval),
            _mean_ci_cell(r.macro_f1_mean, r.macro_f1_ci_low, r.macro_f1_ci_high, r.n, n_test=r.n_test,
                          method=r.interval),
            Cell(seconds(r.wall_time_s_mean), _key(r.wall_time_s_mean), cls="best" if r.best_wall_time else ""),
            Cell(count(r.trainable_params), _key(r.trainable_params),
                 cls="best" if r.best_trainable_params else ""),
            Cell(count(r.total_params), _key(r.total_params)),
        ])
    return Table(f"Leaderboard — {task}", headers, rows)


def _delta_cell(mean: float, delta: float, low: float, high: float, baseline: bool, is_baseline: bool,
                digits: int = 3, unit: str = "") -> Cell:
    show = seconds if unit == "s" else (lambda x, signed=False: num(x, digits, signed))
    if is_baseline:
        return Cell(show(mean), _key(mean), "baseline")
    if not baseline:
        return Cell(show(mean), _key(mean), "no from-scratch baseline")
    if not _finite(delta):
        return Cell(show(mean), _key(mean), "Δ n/a")
    ci = f" [{show(low, signed=True)}, {show(high, signed=True)}]" if _finite(low) else " (n<2 on a side: no CI)"
    return Cell(show(mean), _key(mean), f"Δ {show(delta, signed=True)}{ci}")


def transfer_table(task: str, metrics: pd.DataFrame) -> Table:
    headers = [("backbone", ""), ("strategy", ""), ("fraction", ""), ("n", "seeds (strategy / from-scratch)"),
               ("start", "val accuracy after the first epoch of training (the same point for every strategy); "
                "strategies that do not train: their val accuracy. Δ vs from-scratch (jumpstart) with 95% Welch CI"),
               ("slope", f"mean val-accuracy gain per epoch from the start point to epoch {stats.SLOPE_EPOCHS}; "
                "— without an SGD curve"),
               ("asymptote", "val accuracy at the selected epoch"),
               ("time to threshold", "wall seconds to reach the threshold; seeds that reached it"),
               ("AULC", "mean val accuracy over epochs (area under the learning curve)"),
               ("negative transfer", "test accuracy significantly below from-scratch (one-sided Welch, 5%)")]
    rows = []
    for r in metrics.itertuples():
        is_base = r.strategy == tables.BASELINE
        cells = [Cell(r.backbone, r.backbone), Cell(r.strategy, r.strategy), Cell(f"{r.fraction:g}", _key(r.fraction)),
                 Cell(str(r.n), str(r.n), "" if is_base else f"vs {r.n_scratch} from-scratch")]
        no_curve = Cell("—", "", _NO_CURVE.get(r.curve_kind, "")) if r.curve_kind != stats.SGD else None
        for m, digits in (("start", 3), ("slope", 4), ("asymptote", 3)):
            if m == "slope" and no_curve:
                cells.append(no_curve)
                continue
            cells.append(_delta_cell(getattr(r, f"{m}_mean"), getattr(r, f"{m}_delta"), getattr(r, f"{m}_delta_low"),
                                     getattr(r, f"{m}_delta_high"), r.baseline, is_base, digits))
        ttt = _delta_cell(r.time_to_threshold_s_mean, r.time_to_threshold_s_delta, r.time_to_threshold_s_delta_low,
                          r.time_to_threshold_s_delta_high, r.baseline, is_base, unit="s")
        reached = f"{r.reached}/{r.n} reached {num(r.threshold)}"
        if not is_base and r.baseline and not _finite(r.time_to_threshold_s_delta):
            reached += f"; from-scratch {r.reached_scratch}/{r.n_scratch}"
        sub = reached if ttt.sub == "Δ n/a" else f"{ttt.sub} · {reached}"
        # a solved probe or zero-shot: no training curve to read a slope, a time or an area from
        cells.append(no_curve or Cell(ttt.text if r.reached else "not reached", ttt.sort, sub))
        cells.append(no_curve or _delta_cell(r.aulc_mean, r.aulc_delta, r.aulc_delta_low, r.aulc_delta_high,
                                             r.baseline, is_base))
        cells.append(_negative_cell(r))
        rows.append(cells)
    return Table(f"Transfer metrics — {task}", headers, rows)


_NO_CURVE = {stats.L2_PATH: "solved probe: no SGD curve", stats.NO_CURVE: "no training"}


def _negative_cell(r: Any) -> Cell:
    if r.strategy == tables.BASELINE:
        return Cell("—", "", "baseline")
    if not r.baseline:
        return Cell("n/a", "", "no from-scratch baseline")
    if r.negative_transfer is None:
        return Cell("undecided", "", "needs ≥ 2 seeds on both sides")
    sub = f"Δ acc {num(r.accuracy_delta, signed=True)}, p = {num(r.p_below_scratch, 3)}"
    if r.negative_transfer:
        return Cell("⚠ yes", "1", sub, "neg", "significantly below from-scratch")
    return Cell("no", "0", sub)


def status_table(caption: str, rows: pd.DataFrame) -> Table:
    headers = [("task", ""), ("backbone", ""), ("strategy", ""), ("fraction", ""), ("seed", ""), ("cell", "cell key"),
               ("message", "")]
    out = [[Cell(r.task, r.task), Cell(r.backbone, r.backbone), Cell(r.strategy, r.strategy),
            Cell(f"{r.fraction:g}" if _finite(r.fraction) else "—", _key(r.fraction)),
            Cell(num(r.seed, 0), _key(r.seed)), Cell(_text_key(r.cell), _text_key(r.cell), cls="mono"),
            Cell(r.error, r.error, cls="msg")] for r in rows.itertuples()]
    return Table(caption, headers, out)


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
    # Here, not at the top: these build on this module's Cell/Table.
    from report import budget, depth, domain, estimates_html, sensitivity, verdict_html
    every_row = data.all_rows if data.all_rows is not None else norm
    return {
        "title": "transferbench report" + (f" — {', '.join(summary['suites'])}" if summary["suites"] else ""),
        "meta": meta, "summary": summary,
        "leaderboards": [leaderboard_table(t, board[board["task"] == t]) for t in tasks],
        "transfer": [transfer_table(t, metrics[metrics["task"] == t]) for t in sorted(set(metrics["task"]))],
        "has_baseline": bool((norm["strategy"] == tables.BASELINE).any()),
        "missing_baseline": [f"{r.task} · {r.backbone} · fraction {r.fraction:g}" for r in missing.itertuples()],
        "figures": figures.all_figures(norm, board, data.curves) + depth.gain_vs_depth_plot(norm),
        "pretraining": pretraining_table(meta.get("pretraining") or []),
        "domain": domain.html_tables(norm),
        "errors": status_table("Failed cells", data.errors),
        "skipped": status_table("Skipped cells (by design: the strategy does not apply)", data.skipped),
        "stats": {"slope_epochs": stats.SLOPE_EPOCHS, "threshold": stats.THRESHOLD_FRACTION,
                  "alpha": stats.NEGATIVE_TRANSFER_ALPHA, "confidence": stats.CONFIDENCE},
        "exports": meta.get("exports", {}),
        "verdict": verdict_html.section(norm, data.verdict),
        "crossover": verdict_html.crossover_section(data),
        "estimates": estimates_html.section(data.estimates) if data.estimates is not None else None,
        "budget": budget.html_tables(data.budget) if data.budget is not None else [],
        "sensitivity": sensitivity.sensitivity_plots(every_row, figures.strategy_colors(list(every_row["strategy"]))),
        **_per_example(data, norm),
    }


def _per_example(data: tables.ReportTables, norm: pd.DataFrame) -> dict[str, Any]:
    """The confusion/calibration section and the search-vs-final alarm (report.perexample_html)."""
    from report import perexample_html

    return {"per_example": perexample_html.section(data.per_example, figures.strategy_colors(list(norm["strategy"]))),
            "alarm": perexample_html.alarm_section(data.alarms)}


def pretraining_table(rows: list[dict[str, Any]]) -> Table | None:
    """Which source each source-pretrained backbone has: task, architecture and depth, epochs, source accuracy."""
    if not rows:
        return None
    columns = [(label, "") for label in ("backbone", "architecture", "depth", "source task", "epochs",
                                          "source test accuracy", "train time (s)", "weights")]
    body = [[Cell(str(r.get("backbone", ""))), Cell(str(r.get("arch", ""))), Cell(_num(r.get("depth"), "{:.0f}")),
             Cell(str(r.get("task", ""))), Cell(_num(r.get("epochs_run"), "{:.0f}")),
             Cell(_num(r.get("accuracy"), "{:.4f}")), Cell(_num(r.get("train_time_s"), "{:.1f}")),
             Cell(str(r.get("weights", "")))] for r in rows]
    return Table("Source pretraining (role pretrain): the weights each source-pretrained backbone starts from",
                 columns, body)


def _num(value: Any, fmt: str) -> str:
    try:
        return fmt.format(float(value))
    except (TypeError, ValueError):
        return "—"


def render(data: tables.ReportTables, meta: dict[str, Any] | None = None) -> str:
    """The HTML page for computed tables (pure: no clock, no file access beyond the packaged template)."""
    return _environment().get_template("report.html.j2").render(**context(data, meta))
