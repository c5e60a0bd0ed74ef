"""The HTML pieces of the per-example section (confusion, calibration) and of the search-vs-final alarm.

Built from the same ``cells.Table`` / ``figkit.Plot`` pieces as the rest of the page: the template prints them with
its ``table`` macro and autoescaping, so a class called ``<script>`` shows as text. Figures draw class and strategy
names with ``text.parse_math`` off (``figkit.style``), so they print as written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from report import alarm, figkit
from report.cells import TableCell, Table, sort_key, num
from report.perexample import ECE_BINS, PerExample, top_confused
from report.vocabulary import strategy_sort_key

# Heat maps stay readable up to this many classes; tasks with more get a table of their most confused pairs.
MAX_HEATMAP_CLASSES = 12
PANEL_IN = 2.3  # inches per small-multiple panel
# Reliability diagrams draw bins holding at least this many predictions: a bin of one or two examples has an
# accuracy of 0 or 1 that says nothing and zig-zags the line. The ECE counts every bin; all are in the CSV.
MIN_BIN = 10
PAIRS_SHOWN = 3  # confused pairs per strategy in the table for tasks with many classes


def _fraction(x: float) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) and np.isfinite(x) else "—"


def confusion_plots(per: PerExample) -> list[figkit.Plot]:
    """Per task × backbone with few classes: row-normalised confusion matrices, one panel per strategy (columns)
    and label fraction (rows, the same subset the learning curves draw)."""
    plots = []
    for (task, backbone), block in per.confusion.groupby(["task", "backbone"], sort=True):
        k = int(block["true_index"].max()) + 1
        if k > MAX_HEATMAP_CLASSES:
            continue
        fractions = figkit.curve_fractions(sorted(block["fraction"].unique()))
        strategies = sorted(block["strategy"].unique(), key=strategy_sort_key)
        fig = Figure(figsize=(PANEL_IN * len(strategies) + 1.2, PANEL_IN * len(fractions) + 1.0))
        axes = fig.subplots(len(fractions), len(strategies), squeeze=False)
        worst = []
        for row, fraction in zip(axes, fractions):
            for ax, strategy in zip(row, strategies):
                cells = block[(block["fraction"] == fraction) & (block["strategy"] == strategy)]
                if cells.empty:
                    ax.set_axis_off()
                    continue
                grid = np.full((k, k), np.nan)
                grid[cells["true_index"], cells["predicted_index"]] = cells["share"]
                names = [""] * k
                for i, name in zip(cells["true_index"], cells["true_class"]):
                    names[i] = _short(name)
                sns.heatmap(grid, vmin=0, vmax=1, cmap="Blues", cbar=False, square=True, ax=ax,
                            annot=k <= 6, fmt=".2f", annot_kws={"fontsize": 6}, xticklabels=names,
                            yticklabels=names)
                ax.tick_params(labelsize=6)
                n = int(cells.groupby("true_index")["n_true"].first().sum())
                seeds = int(cells["seeds"].iloc[0])
                ax.set_title(f"{strategy}\nfraction {fraction:g} · n={n}, {seeds} seed(s)", fontsize=7)
                off = cells[cells["true_index"] != cells["predicted_index"]].sort_values("share")
                if len(off) and off["share"].iloc[-1] > 0:
                    w = off.iloc[-1]
                    worst.append(f"{strategy} at fraction {fraction:g}: {w['true_class']} taken for "
                                 f"{w['predicted_class']} {w['share']:.0%}")
            row[0].set_ylabel("true class", fontsize=7)
        for ax in axes[-1]:
            ax.set_xlabel("predicted class", fontsize=7)
        width = fig.get_size_inches()[0]
        fig.suptitle(figkit.wrap_title(f"{task} · {backbone}: confusion (share of each true class, test, summed "
                                    "over seeds)", width))
        figkit.margins(fig, left=0.9, right=0.2, top=0.95, bottom=1.1, wspace=0.45, hspace=0.9)
        alt = (f"Row-normalised confusion matrices for task {task} with backbone {backbone}, one panel per "
               f"strategy and label fraction, test predictions summed over seeds. Most confused pair per panel: "
               f"{'; '.join(worst) or 'none'}.")
        plots.append(figkit.Plot("confusion", f"Confusion matrices — {task} · {backbone}", alt,
                                  figkit.to_data_uri(fig)))
    return plots


def _short(name: str, limit: int = 14) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"


def reliability_plots(per: PerExample, colors: dict) -> list[figkit.Plot]:
    """Per task × backbone: reliability diagrams (accuracy against mean confidence per bin), one panel per label
    fraction, a line per strategy, the diagonal for perfect calibration."""
    plots = []
    for (task, backbone), block in per.reliability.groupby(["task", "backbone"], sort=True):
        fractions = figkit.curve_fractions(sorted(block["fraction"].unique()))
        fig = Figure(figsize=(3.2 * len(fractions) + figkit.LEGEND_IN, 3.4))
        axes = fig.subplots(1, len(fractions), squeeze=False)[0]
        summary = per.calibration[(per.calibration["task"] == task) & (per.calibration["backbone"] == backbone)]
        for ax, fraction in zip(axes, fractions):
            ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1)
            for strategy, bins in sorted(block[block["fraction"] == fraction].groupby("strategy"),
                                         key=lambda kv: strategy_sort_key(kv[0])):
                bins = bins[bins["n"] >= MIN_BIN]
                ax.plot(bins["confidence"], bins["accuracy"], color=colors[strategy], linewidth=1, alpha=0.8,
                        label=strategy)
                # marker area ∝ the bin's share of the predictions: where most of them are
                ax.scatter(bins["confidence"], bins["accuracy"], s=4 + 120 * bins["n"] / bins["n"].sum(),
                           color=colors[strategy], zorder=3)
            ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (max probability)", ylabel="accuracy",
                   title=f"label fraction {fraction:g}")
        figkit.figure_legend(fig, axes)
        width = fig.get_size_inches()[0]
        fig.suptitle(figkit.wrap_title(f"{task} · {backbone}: reliability ({ECE_BINS} equal-width bins, test, pooled "
                                    "over seeds)", width - figkit.LEGEND_IN))
        figkit.margins(fig, right=figkit.LEGEND_IN, top=0.75, bottom=0.55)
        eces = "; ".join(f"{r.strategy} at {r.fraction:g}: ECE {num(r.ece)} (n={r.n})"
                         for r in summary.itertuples() if r.fraction in fractions)
        alt = (f"Reliability diagrams for task {task} with backbone {backbone}: accuracy against mean confidence "
               f"in each of {ECE_BINS} confidence bins holding at least {MIN_BIN} predictions, marker size by the "
               f"bin's share, one line per strategy, one panel per label fraction; the dashed diagonal is perfect "
               f"calibration. {eces}.")
        plots.append(figkit.Plot("reliability", f"Reliability diagrams — {task} · {backbone} (bins of at least "
                                  f"{MIN_BIN} predictions; marker size: share of predictions)", alt,
                                  figkit.to_data_uri(fig)))
    return plots


def calibration_table(task: str, table: pd.DataFrame) -> Table:
    headers = [("backbone", ""), ("fraction", ""), ("strategy", ""),
               ("n", "test predictions pooled over seeds (seeds)"), ("accuracy", "test accuracy of those predictions"),
               ("confidence", "mean probability of the predicted class"),
               ("ECE", f"expected calibration error, {ECE_BINS} equal-width confidence bins (Guo et al. 2017)")]
    rows = [[TableCell(r.backbone, r.backbone), TableCell(_fraction(r.fraction), sort_key(r.fraction)),
             TableCell(r.strategy, r.strategy), TableCell(str(r.n), str(r.n), f"{r.seeds} seed(s)"),
             TableCell(num(r.accuracy), sort_key(r.accuracy)), TableCell(num(r.confidence), sort_key(r.confidence)),
             TableCell(num(r.ece), sort_key(r.ece), "over" if r.confidence > r.accuracy else "under")]
            for r in table.itertuples()]
    return Table(f"Calibration — {task}", headers, rows)


def pairs_table(task: str, confusion: pd.DataFrame) -> Table:
    """One row per group and strategy: its most confused (true → predicted) pairs, largest share first."""
    headers = [("backbone", ""), ("fraction", ""), ("strategy", ""),
               ("most confused", "true class → predicted class: share of the true class's test examples "
                "(count of n), summed over seeds"),
               ("next", f"the next {PAIRS_SHOWN - 1} pairs")]
    rows = []
    top = top_confused(confusion, PAIRS_SHOWN)
    for (backbone, fraction, strategy), pairs in top.groupby(["backbone", "fraction", "strategy"], sort=False):
        text = [f"{r.true_class} → {r.predicted_class}: {r.share:.1%} ({r.count} of {r.n_true})"
                for r in pairs.itertuples()]
        rows.append([TableCell(backbone, backbone), TableCell(_fraction(fraction), sort_key(fraction)),
                     TableCell(strategy, strategy),
                     TableCell(text[0], sort_key(pairs["share"].iloc[0])), TableCell(" · ".join(text[1:]) or "—")])
    return Table(f"Most confused class pairs — {task}", headers, rows)


def section(per: PerExample | None, colors: dict) -> dict[str, Any]:
    """What the template's per-example section shows; ``reason`` is the one sentence when there is nothing."""
    if per is None or per.empty:
        return {"reason": "No per-example predictions are stored with these results (cells recorded before "
                          "predictions were kept, or a report rendered without its results directory), so there "
                          "are no confusion matrices or calibration.", "figures": [], "calibration": [],
                "pairs": [], "note": ""}
    tasks = sorted(set(per.calibration["task"]))
    with figkit.style():
        plots = confusion_plots(per) + reliability_plots(per, colors)
    many = [t for t in tasks if per.classes(t) > MAX_HEATMAP_CLASSES]
    note = (f"{per.missing} finished final cell(s) have no stored predictions and are not included."
            if per.missing else "")
    return {"reason": "", "figures": plots, "note": note,
            "calibration": [calibration_table(t, per.calibration[per.calibration["task"] == t]) for t in tasks],
            "pairs": [pairs_table(t, per.confusion[per.confusion["task"] == t]) for t in many]}


def alarm_section(table: pd.DataFrame | None) -> dict[str, Any]:
    """The search-vs-final check: how many configurations were checked, and the alarmed ones as highlighted
    rows (every checked configuration is in the CSV)."""
    if table is None or table.empty:
        return {"checked": 0, "alarms": 0, "table": None}
    flagged = table[table["alarm"]]
    headers = [("task", ""), ("backbone", ""), ("fraction", ""), ("strategy", ""),
               ("trial val", "validation main metric of the selected search trial (n_val)"),
               ("final val", "finals' validation main metric: worst seed (mean over seeds)"),
               ("gap", "trial − worst final seed"),
               ("margin", f"max({alarm.FLOOR:g}, {alarm.Z:g} binomial standard errors)"),
               ("final test", "finals' mean test main metric")]
    rows = []
    for r in flagged.itertuples():
        rows.append([TableCell(c, c, cls="neg") for c in (r.task, r.backbone)] + [
            TableCell(_fraction(r.fraction), sort_key(r.fraction), cls="neg"),
            TableCell(r.strategy, r.strategy, cls="neg"),
            TableCell(num(r.trial_val), sort_key(r.trial_val), f"{r.main_metric}, n_val={num(r.trial_n_val, 0)}",
                      "neg"),
            TableCell(num(r.final_val_min), sort_key(r.final_val_min),
                      f"seed {num(r.worst_seed, 0)}; mean {num(r.final_val_mean)} over {r.n}", "neg"),
            TableCell(num(r.gap, signed=True), sort_key(r.gap), cls="neg"),
            TableCell(num(r.margin), sort_key(r.margin), cls="neg"),
            TableCell(num(r.final_test_mean), sort_key(r.final_test_mean),
                      "also below the trial by more than the margin" if r.test_below else "", "neg")])
    return {"checked": len(table), "alarms": len(flagged),
            "table": Table("Final runs far below their search trial", headers, rows) if rows else None}
