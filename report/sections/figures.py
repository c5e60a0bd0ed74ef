"""The figures of the results section (learning curves, score vs fraction, Pareto front, heatmap, gain vs depth),
embedded as base64 PNG data URIs.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot): no global backend switch for whoever
imports the report (a notebook keeps its inline backend), and no figure registry to leak memory in a long run.
Every figure comes with alt text that states what it shows and its headline numbers, for screen readers and
for anyone reading the HTML source.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from bench.results import seedstats as stats
from report.figkit import (
    LEGEND_IN, Plot, curve_fractions, figure_legend, fmt_score, margins, plain_log_x, strategy_colors, style,
    to_data_uri, wrap_title)
from report.vocabulary import strategy_sort_key

def learning_curves(frame: pd.DataFrame, curves: pd.DataFrame, colors: dict) -> list[Plot]:
    """Per task and backbone: validation accuracy vs epoch and vs wall time, a row of panels per fraction."""
    plots = []
    ok = frame[frame["status"] == "ok"]
    for (task, backbone), block in curves.groupby(["task", "backbone"], sort=True):
        all_fractions = sorted(block["fraction"].unique())
        fractions = curve_fractions(all_fractions)
        fig = Figure(figsize=(9 + LEGEND_IN, 2.4 * len(fractions) + 0.9))
        axes = fig.subplots(len(fractions), 2, squeeze=False)  # no sharey: it re-autoscales every panel per artist
        finals = []
        for row, fraction in zip(axes, fractions):
            panel = block[block["fraction"] == fraction]
            here = (ok["task"] == task) & (ok["backbone"] == backbone) & (ok["fraction"] == fraction)
            levels = set(ok.loc[here & (ok["_curve_kind"] != stats.SGD), "strategy"])
            for strategy, line in sorted(panel.groupby("strategy"), key=lambda kv: strategy_sort_key(kv[0])):
                line = line.sort_values("epoch")
                if line["epoch"].max() <= 0 or strategy in levels:
                    continue  # no SGD curve (zero-shot, a solved probe): drawn as a level by _zero_shot_lines
                for ax, x in zip(row, ("epoch", "time_mean")):
                    ax.plot(line[x], line["mean"], color=colors[strategy], label=strategy, marker="o", markersize=2.5)
                    band = line["low"].notna()
                    ax.fill_between(line.loc[band, x], line.loc[band, "low"], line.loc[band, "high"],
                                    color=colors[strategy], alpha=0.2, linewidth=0)
                finals.append(f"{strategy} at fraction {fraction:g} ends at {fmt_score(line['mean'].iloc[-1])} "
                              f"(n={line['n'].max()})")
            _zero_shot_lines(ok, task, backbone, fraction, row, colors)
            if (panel["epoch"] == 0).any():  # curves with the before-training point start the axis at 0
                row[0].set_xlim(left=-0.2)
                row[1].set_xlim(left=min(0.0, panel["time_mean"].min()))
            row[0].set(xlabel="epoch", ylabel="val accuracy", title=f"label fraction {fraction:g}")
            row[1].set(xlabel="wall time since cell start (s)", ylabel="val accuracy",
                       title=f"label fraction {fraction:g}")
        figure_legend(fig, axes)
        width = fig.get_size_inches()[0]
        fig.suptitle(wrap_title(f"{task} · {backbone}: learning curves (mean, 95% CI over seeds)", width - LEGEND_IN))
        margins(fig, right=LEGEND_IN, top=0.85)
        alt = (f"Learning curves for task {task} with backbone {backbone}: mean validation accuracy per epoch "
               f"(left) and against wall time (right), one line per strategy, shaded 95% confidence bands over "
               f"seeds, one row per label fraction. Final mean accuracy: {'; '.join(finals)}.")
        title = f"Learning curves — {task} · {backbone}"
        if len(fractions) < len(all_fractions):
            title += (f" (label fractions {', '.join(f'{f:g}' for f in fractions)} of "
                      f"{len(all_fractions)}; all are in the learning-curves CSV)")
        plots.append(Plot("curves", title, alt, to_data_uri(fig)))
    return plots


_LEVEL_LABEL = {stats.NO_CURVE: "no training", stats.L2_PATH: "solved probe"}


def _zero_shot_lines(ok: pd.DataFrame, task: str, backbone: str, fraction: float, row, colors: dict) -> None:
    """Strategies without an SGD curve (zero-shot; feature-extraction's solved probe, whose curve is an L2 path,
    not epochs) appear as a dashed level at their mean validation accuracy."""
    untrained = ok["_curve_kind"] != stats.SGD
    cells = ok[(ok["task"] == task) & (ok["backbone"] == backbone) & (ok["fraction"] == fraction) & untrained]
    for strategy, group in cells.groupby("strategy"):
        level = group["val_accuracy"].fillna(group["accuracy"]).mean()
        if math.isfinite(level):
            for ax in row:
                ax.axhline(level, color=colors[strategy], linestyle="--", linewidth=1,
                           label=f"{strategy} ({_LEVEL_LABEL.get(group['_curve_kind'].iloc[0], 'no epochs')})")


def fraction_plot(board: pd.DataFrame, colors: dict) -> list[Plot]:
    """Per task: test accuracy vs label fraction (log x), one panel per backbone, CI error bars."""
    plots = []
    for task, block in board[(board["n"] > 0) & (board["fraction"] > 0)].groupby("task", sort=True):
        backbones = sorted(block["backbone"].unique())
        ncols, nrows = min(len(backbones), 3), math.ceil(len(backbones) / 3)
        fig = Figure(figsize=(4 * ncols + 0.8 + LEGEND_IN, 3.1 * nrows + 0.9))
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        summary = []
        for ax, backbone in zip(axes, backbones):
            for strategy, line in sorted(block[block["backbone"] == backbone].groupby("strategy"),
                                         key=lambda kv: strategy_sort_key(kv[0])):
                line = line.sort_values("fraction")
                err = np.vstack([line["accuracy_mean"] - line["accuracy_ci_low"],
                                 line["accuracy_ci_high"] - line["accuracy_mean"]])
                ax.errorbar(line["fraction"], line["accuracy_mean"], yerr=np.nan_to_num(err), color=colors[strategy],
                            marker="o", markersize=3, capsize=2, label=strategy)
                summary.append(f"{strategy} on {backbone} from {fmt_score(line['accuracy_mean'].iloc[0])} at "
                               f"{line['fraction'].iloc[0]:g} to {fmt_score(line['accuracy_mean'].iloc[-1])} at "
                               f"{line['fraction'].iloc[-1]:g}")
            fractions = sorted(block["fraction"].unique())
            plain_log_x(ax, fractions)
            ax.set_xlim(fractions[0] / 1.5, fractions[-1] * 1.5)  # also gives a single fraction a non-empty range
            ax.set(xlabel="label fraction (log scale)", ylabel="test accuracy", title=wrap_title(backbone, 4))
        for ax in axes[len(backbones):]:
            ax.set_visible(False)
        figure_legend(fig, axes)
        width = fig.get_size_inches()[0]
        fig.suptitle(wrap_title(f"{task}: test accuracy vs label fraction (mean, 95% CI)", width - LEGEND_IN))
        margins(fig, right=LEGEND_IN, top=0.9, hspace=0.7)
        alt = (f"Test accuracy against the fraction of training labels used, log-scaled x axis, for task {task}; "
               f"one panel per backbone, one line per strategy with 95% confidence error bars. "
               f"{'; '.join(summary)}.")
        plots.append(Plot("fraction", f"Accuracy vs label fraction — {task}", alt, to_data_uri(fig)))
    return plots


def pareto_plot(board: pd.DataFrame, colors: dict) -> list[Plot]:
    """Per task: mean test accuracy vs mean wall time per configuration, with the Pareto front drawn."""
    plots = []
    drawable = board[(board["n"] > 0) & board["wall_time_s_mean"].notna() & board["accuracy_mean"].notna()]
    for task, block in drawable.groupby("task", sort=True):
        block = block.reset_index(drop=True)
        fig = Figure(figsize=(6.5 + LEGEND_IN + 0.8, 4))
        ax = fig.subplots()
        markers = dict(zip(sorted(block["backbone"].unique()), "osD^vP*X"))
        for (strategy, backbone), pts in block.groupby(["strategy", "backbone"]):
            ax.scatter(pts["wall_time_s_mean"], pts["accuracy_mean"], color=colors[strategy],
                       marker=markers.get(backbone, "o"), s=22, label=f"{strategy} · {backbone}")
        front = block.loc[stats.pareto_front(block["wall_time_s_mean"], block["accuracy_mean"])]
        ax.step(front["wall_time_s_mean"], front["accuracy_mean"], where="post", color="0.3", linewidth=1,
                label="Pareto front")
        if (block["wall_time_s_mean"] > 0).all():
            plain_log_x(ax)
        ax.set(xlabel="mean wall time per cell (s, log scale)", ylabel="test accuracy",
               title=wrap_title(f"{task}: accuracy vs cost (all fractions)", 6.5))
        figure_legend(fig, ax)
        margins(fig, right=LEGEND_IN + 0.8, top=0.6)
        on_front = "; ".join(f"{r.strategy} · {r.backbone} at fraction {r.fraction:g} "
                             f"({fmt_score(r.accuracy_mean)} in {r.wall_time_s_mean:.1f} s)"
                             for r in front.itertuples())
        alt = (f"Scatter of mean test accuracy against mean wall time per cell for task {task}, colour by "
               f"strategy, marker by backbone, with the Pareto front (no other configuration is both faster and "
               f"more accurate). On the front: {on_front or 'none'}.")
        plots.append(Plot("pareto", f"Accuracy vs wall time — {task}", alt, to_data_uri(fig)))
    return plots


def heatmap(board: pd.DataFrame) -> list[Plot]:
    """Strategy × task mean test accuracy at each task's largest label fraction (averaged over backbones)."""
    done = board[board["n"] > 0]
    if done.empty:
        return []
    fraction = done["fraction"].fillna(-1)  # a results set without fractions still gets its heat map
    top = done[fraction == fraction.groupby(done["task"]).transform("max")]
    grid = top.groupby(["strategy", "task"])["accuracy_mean"].mean().unstack("task")
    if grid.empty or not np.isfinite(grid.to_numpy(float)).any():
        return []
    grid = grid.loc[sorted(grid.index, key=strategy_sort_key), sorted(grid.columns)]
    fig = Figure(figsize=(min(1.3 * grid.shape[1], 14) + 3, 0.5 * grid.shape[0] + 1.6))
    ax = fig.subplots()
    sns.heatmap(grid, annot=True, fmt=".3f", cmap="viridis", vmin=0, vmax=1, ax=ax,
                cbar_kws={"label": "test accuracy"}, linewidths=0.5)
    ax.set(xlabel="task", ylabel="strategy", title="Mean test accuracy at the largest label fraction")
    best = "; ".join(f"{task}: {grid[task].idxmax()} ({fmt_score(grid[task].max())})"
                     for task in grid.columns if grid[task].notna().any())
    alt = (f"Heat map of mean test accuracy, strategies as rows and tasks as columns, at each task's largest "
           f"label fraction, averaged over backbones and seeds; empty cells have no finished run. "
           f"Best strategy per task: {best}.")
    # one figure with free-length task names as tick labels: here the extra layout pass is cheap and needed
    return [Plot("heatmap", "Strategy × task heat map", alt, to_data_uri(fig, tight=True))]


def all_figures(frame: pd.DataFrame, board: pd.DataFrame, curves: pd.DataFrame) -> list[Plot]:
    """Every figure of the report, in display order. ``frame`` must be ``tables.normalize``d."""
    colors = strategy_colors(list(frame["strategy"]))
    with style():
        return [*heatmap(board), *fraction_plot(board, colors), *pareto_plot(board, colors),
                *learning_curves(frame, curves, colors)]


def gain_vs_depth_plot(gains: pd.DataFrame) -> list[Plot]:
    """One figure per task of ``report.depth.transfer_gain_by_depth``'s table: transfer gain (strategy −
    from-scratch) against depth, a panel per label fraction."""
    plots = []
    for task, rows in gains.groupby("task"):
        fractions = sorted(rows["fraction"].unique())
        strategies = sorted(rows["strategy"].unique())
        colors = strategy_colors(strategies)
        with style():
            fig = Figure(figsize=(3.2 * len(fractions) + 0.8, 3.2))
            axes = fig.subplots(1, len(fractions), sharey=True, squeeze=False)[0]
            for ax, fraction in zip(axes, fractions):
                at = rows[rows["fraction"] == fraction]
                for strategy in strategies:
                    s = at[at["strategy"] == strategy].sort_values("depth")
                    if s.empty:
                        continue
                    yerr = np.vstack([s["gain"] - s["low"], s["high"] - s["gain"]])
                    yerr = None if np.isnan(yerr).all() else np.nan_to_num(yerr)
                    ax.errorbar(s["depth"], s["gain"], yerr=yerr, marker="o", capsize=3, label=strategy,
                                color=colors[strategy])
                ax.axhline(0.0, color="0.5", lw=0.8, ls="--")
                ax.set_title(f"fraction {fraction:g}")
                ax.set_xlabel("depth")
                ax.set_xticks(sorted(rows["depth"].unique()))
            axes[0].set_ylabel("gain over from-scratch")
            axes[-1].legend(fontsize=8, loc="best")
            fig.suptitle(f"{task}: transfer gain vs depth")
            margins(fig, top=0.7)
            src = to_data_uri(fig)
        best = rows.loc[rows["gain"].idxmax()]
        depths = ", ".join(str(d) for d in sorted(rows["depth"].unique()))
        ci = "" if math.isnan(best["low"]) else f" [{best['low']:+.3f}, {best['high']:+.3f}]"
        alt = (f"Transfer gain over from-scratch on {task} against depth ({depths}); largest: {best['strategy']} "
               f"at depth {best['depth']}, fraction {best['fraction']:g}: {best['gain']:+.3f}{ci}")
        plots.append(Plot("transfer", f"Transfer gain vs depth — {task}", alt, src))
    return plots
