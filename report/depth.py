"""Transfer gain versus network depth (the lectures' shallow-vs-deep question), from results rows only.

Rows of source-pretrained backbones carry a ``depth`` column (the timm architecture's depth). For each task,
strategy, label fraction and depth, the gain is ``mean(strategy) − mean(from-scratch)`` over seeds of the main
metric, with a Welch confidence interval (``bench.results.seedstats``); the figure draws one panel per fraction,
gain against depth, one line per strategy, a zero line for "no transfer gain".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench.results import seedstats as stats
from report.figkit import Plot, margins, strategy_colors, style, to_data_uri
from report.vocabulary import BASELINE



def transfer_gain_by_depth(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, strategy, fraction, depth): ``gain``, ``low``, ``high``, ``n`` (seeds of the strategy).

    Only ``ok`` rows with a depth count; the metric is each row's ``main_metric`` (accuracy by default).
    """
    cols = ["task", "strategy", "fraction", "depth", "backbone", "gain", "low", "high", "n"]
    if "depth" not in frame.columns:
        return pd.DataFrame(columns=cols)
    ok = frame[(frame["status"] == "ok") & frame["depth"].notna()].copy()
    if ok.empty:
        return pd.DataFrame(columns=cols)
    metric = ok.get("main_metric", pd.Series("accuracy", index=ok.index)).fillna("accuracy")
    ok["score"] = [row[m] for (_, row), m in zip(ok.iterrows(), metric)]
    out = []
    for (task, depth, backbone), group in ok.groupby(["task", "depth", "backbone"]):
        for fraction, at in group.groupby("fraction"):
            base = at.loc[at["strategy"] == BASELINE, "score"]
            if base.empty:
                continue
            for strategy, rows in at[at["strategy"] != BASELINE].groupby("strategy"):
                d = stats.welch_difference(rows["score"], base)
                out.append([task, strategy, float(fraction), int(depth), backbone, d.diff, d.low, d.high, d.n_a])
    return pd.DataFrame(out, columns=cols).sort_values(["task", "fraction", "strategy", "depth"], ignore_index=True)


def gain_vs_depth_plot(frame: pd.DataFrame) -> list[Plot]:
    """One figure per task: transfer gain (strategy − from-scratch) against depth, a panel per label fraction."""
    gains = transfer_gain_by_depth(frame)
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
