"""The page's result tables: leaderboard, transfer metrics, failed and skipped cells, source pretraining."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.results import seedstats as stats
from report.cells import TableCell, Table, count, finite, num, sort_key, seconds, text_key
from report.vocabulary import BASELINE


def _mean_ci_cell(mean: float, low: float, high: float, n: int, best: bool = False, n_test: Any = 0,
                  method: str = "") -> TableCell:
    """``0.812 [0.776, 0.846]`` over ``3 seeds × 500 test``: bootstrap percentile bounds, never "± half-width"
    (the interval is not symmetric near 0 or 1)."""
    if not finite(mean):
        return TableCell("—")
    size = f"{n} seed{'' if n == 1 else 's'}" + (f" × {n_test:.0f} test" if finite(n_test) and n_test else "")
    if not finite(low):
        return TableCell(num(mean), sort_key(mean), f"{size}, no interval", "best" if best else "", method)
    return TableCell(f"{num(mean)} [{num(low)}, {num(high)}]", sort_key(mean), size, "best" if best else "",
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
            TableCell(r.backbone, r.backbone), TableCell(r.strategy, r.strategy),
            TableCell(f"{r.fraction:g}", sort_key(r.fraction)),
            TableCell(str(r.n), str(r.n), extra, "warn" if r.failed else ""),
            _mean_ci_cell(r.accuracy_mean, r.accuracy_ci_low, r.accuracy_ci_high, r.n, r.best_accuracy,
                          r.n_test, r.interval),
            _mean_ci_cell(r.macro_f1_mean, r.macro_f1_ci_low, r.macro_f1_ci_high, r.n, n_test=r.n_test,
                          method=r.interval),
            TableCell(seconds(r.wall_time_s_mean), sort_key(r.wall_time_s_mean),
                      cls="best" if r.best_wall_time else ""),
            TableCell(count(r.trainable_params), sort_key(r.trainable_params),
                      cls="best" if r.best_trainable_params else ""),
            TableCell(count(r.total_params), sort_key(r.total_params)),
        ])
    return Table(f"Leaderboard — {task}", headers, rows)


def _delta_cell(mean: float, delta: float, low: float, high: float, baseline: bool, is_baseline: bool,
                digits: int = 3, unit: str = "") -> TableCell:
    show = seconds if unit == "s" else (lambda x, signed=False: num(x, digits, signed))
    if is_baseline:
        return TableCell(show(mean), sort_key(mean), "baseline")
    if not baseline:
        return TableCell(show(mean), sort_key(mean), "no from-scratch baseline")
    if not finite(delta):
        return TableCell(show(mean), sort_key(mean), "Δ n/a")
    ci = f" [{show(low, signed=True)}, {show(high, signed=True)}]" if finite(low) else " (n<2 on a side: no CI)"
    return TableCell(show(mean), sort_key(mean), f"Δ {show(delta, signed=True)}{ci}")


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
        is_base = r.strategy == BASELINE
        cells = [TableCell(r.backbone, r.backbone), TableCell(r.strategy, r.strategy),
                 TableCell(f"{r.fraction:g}", sort_key(r.fraction)),
                 TableCell(str(r.n), str(r.n), "" if is_base else f"vs {r.n_scratch} from-scratch")]
        no_curve = TableCell("—", "", _NO_CURVE.get(r.curve_kind, "")) if r.curve_kind != stats.SGD else None
        for m, digits in (("start", 3), ("slope", 4), ("asymptote", 3)):
            if m == "slope" and no_curve:
                cells.append(no_curve)
                continue
            cells.append(_delta_cell(getattr(r, f"{m}_mean"), getattr(r, f"{m}_delta"), getattr(r, f"{m}_delta_low"),
                                     getattr(r, f"{m}_delta_high"), r.baseline, is_base, digits))
        ttt = _delta_cell(r.time_to_threshold_s_mean, r.time_to_threshold_s_delta, r.time_to_threshold_s_delta_low,
                          r.time_to_threshold_s_delta_high, r.baseline, is_base, unit="s")
        reached = f"{r.reached}/{r.n} reached {num(r.threshold)}"
        if not is_base and r.baseline and not finite(r.time_to_threshold_s_delta):
            reached += f"; from-scratch {r.reached_scratch}/{r.n_scratch}"
        sub = reached if ttt.sub == "Δ n/a" else f"{ttt.sub} · {reached}"
        # a solved probe or zero-shot: no training curve to read a slope, a time or an area from
        cells.append(no_curve or TableCell(ttt.text if r.reached else "not reached", ttt.sort, sub))
        cells.append(no_curve or _delta_cell(r.aulc_mean, r.aulc_delta, r.aulc_delta_low, r.aulc_delta_high,
                                             r.baseline, is_base))
        cells.append(_negative_cell(r))
        rows.append(cells)
    return Table(f"Transfer metrics — {task}", headers, rows)


_NO_CURVE = {stats.L2_PATH: "solved probe: no SGD curve", stats.NO_CURVE: "no training"}


def _negative_cell(r: Any) -> TableCell:
    if r.strategy == BASELINE:
        return TableCell("—", "", "baseline")
    if not r.baseline:
        return TableCell("n/a", "", "no from-scratch baseline")
    if r.negative_transfer is None:
        return TableCell("undecided", "", "needs ≥ 2 seeds on both sides")
    sub = f"Δ acc {num(r.accuracy_delta, signed=True)}, p = {num(r.p_below_scratch, 3)}"
    if r.negative_transfer:
        return TableCell("⚠ yes", "1", sub, "neg", "significantly below from-scratch")
    return TableCell("no", "0", sub)


def status_table(caption: str, rows: pd.DataFrame) -> Table:
    headers = [("task", ""), ("backbone", ""), ("strategy", ""), ("fraction", ""), ("seed", ""), ("cell", "cell key"),
               ("message", "")]
    out = [[TableCell(r.task, r.task), TableCell(r.backbone, r.backbone), TableCell(r.strategy, r.strategy),
            TableCell(f"{r.fraction:g}" if finite(r.fraction) else "—", sort_key(r.fraction)),
            TableCell(num(r.seed, 0), sort_key(r.seed)), TableCell(text_key(r.cell), text_key(r.cell), cls="mono"),
            TableCell(r.error, r.error, cls="msg")] for r in rows.itertuples()]
    return Table(caption, headers, out)


def pretraining_table(rows: list[dict[str, Any]]) -> Table | None:
    """Which source each source-pretrained backbone has: task, architecture and depth, epochs, source accuracy."""
    if not rows:
        return None
    columns = [(label, "") for label in ("backbone", "architecture", "depth", "source task", "epochs",
                                          "source test accuracy", "train time (s)", "weights")]
    body = [[TableCell(str(r.get("backbone", ""))), TableCell(str(r.get("arch", ""))),
             TableCell(_num(r.get("depth"), "{:.0f}")),
             TableCell(str(r.get("task", ""))), TableCell(_num(r.get("epochs_run"), "{:.0f}")),
             TableCell(_num(r.get("accuracy"), "{:.4f}")), TableCell(_num(r.get("train_time_s"), "{:.1f}")),
             TableCell(str(r.get("weights", "")))] for r in rows]
    return Table("Source pretraining (role pretrain): the weights each source-pretrained backbone starts from",
                 columns, body)


def _num(value: Any, fmt: str) -> str:
    try:
        return fmt.format(float(value))
    except (TypeError, ValueError):
        return "—"
