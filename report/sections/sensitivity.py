"""The page's hyperparameter-sensitivity figures, from ``report.sensitivity.searched``.

Values spanning more than a decade (learning rates, weight decay) get a log x axis. Drawn with the figure kit
(``report.figkit``): fixed margins, no pyplot, alt text with the headline numbers.
"""

from __future__ import annotations

import math

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from report.figkit import (LEGEND_IN, Plot, figure_legend, fmt_score, margins, plain_log_x, strategy_colors, style,
                           to_data_uri, wrap_title)
from report.sensitivity import SCORE, LOG_SPAN, _numeric, searched
from report.vocabulary import strategy_sort_key


def _panel(ax, rows: pd.DataFrame, name: str, colors: dict) -> str:
    """Draw one hyperparameter's panel; returns the alt-text fragment (best trial per strategy)."""
    column = f"p_{name}"
    rows = rows[rows[column].notna()]
    numbers = _numeric(rows[column])
    hue_order = sorted(rows["strategy"].unique(), key=strategy_sort_key)
    palette = {s: colors[s] for s in hue_order}
    if numbers is not None:
        data = rows.assign(x=numbers.astype(float))
        positive = data["x"][data["x"] > 0]
        log = len(positive) == len(data) and positive.max() / positive.min() > LOG_SPAN
        sns.scatterplot(data=data, x="x", y=SCORE, hue="strategy", hue_order=hue_order, palette=palette, ax=ax,
                        s=18, alpha=0.7, legend=False)
        means = data.groupby(["strategy", "x"], as_index=False)[SCORE].mean()
        for strategy, line in means.groupby("strategy"):
            ax.plot(line["x"], line[SCORE], color=colors[strategy], linewidth=1, label=strategy)
        if log:  # ticks at the powers of ten: the tried values may crowd (1e-3, 2e-3, 3e-3)
            low, high = math.floor(math.log10(positive.min())), math.ceil(math.log10(positive.max()))
            plain_log_x(ax, [10.0**k for k in range(low, high + 1)])
        ax.set_xlabel(f"{name}{' (log scale)' if log else ''}")
    else:
        data = rows.assign(x=rows[column].map(str))
        sns.stripplot(data=data, x="x", y=SCORE, hue="strategy", hue_order=hue_order, palette=palette, ax=ax,
                      dodge=len(hue_order) > 1, size=4, alpha=0.8, legend=False)
        for strategy in hue_order:  # legend entries, drawn nowhere
            ax.plot([], [], color=colors[strategy], label=strategy)
        ax.set_xlabel(name)
    ax.set(ylabel="val accuracy", title=wrap_title(name, 3.6))
    best = rows.loc[rows.groupby("strategy")[SCORE].idxmax()]
    return f"{name}: " + ", ".join(f"{r.strategy} best at {r[column]} ({fmt_score(r[SCORE])})"
                                   for _, r in best.iterrows())


def sensitivity_plots(frame: pd.DataFrame, colors: dict | None = None) -> list[Plot]:
    """Per task: validation score of every search trial against each searched hyperparameter.

    Args:
        frame: results rows of every role (``tables.normalize``d); rows without ``role == 'search'`` are ignored.
        colors: strategy → colour (``report.figkit.strategy_colors``), so strategies keep their colour across figures.

    Returns:
        One ``Plot`` (section ``sensitivity``) per task with searched hyperparameters; none without search rows.
    """
    rows, names = searched(frame)
    if not names:
        return []
    colors = colors or strategy_colors(list(frame["strategy"]))
    plots = []
    with style():
        for task, block in rows.groupby("task", sort=True):
            panels = [n for n in names if block[f"p_{n}"].notna().any()]
            if not panels:
                continue
            ncols, nrows = min(len(panels), 3), math.ceil(len(panels) / 3)
            fig = Figure(figsize=(3.6 * ncols + 0.8 + LEGEND_IN, 2.9 * nrows + 0.9))
            axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
            parts = [_panel(ax, block, name, colors) for ax, name in zip(axes, panels)]
            for ax in axes[len(panels):]:
                ax.set_visible(False)
            figure_legend(fig, axes)
            width = fig.get_size_inches()[0]
            fig.suptitle(wrap_title(f"{task}: validation accuracy of each search trial vs its hyperparameters",
                                width - LEGEND_IN))
            margins(fig, right=LEGEND_IN, top=0.85, hspace=0.8, wspace=0.35)
            trials = len(block)
            alt = (f"Hyperparameter sensitivity for task {task}: validation accuracy of {trials} search trials "
                   f"against {', '.join(panels)}, one panel per hyperparameter, a point per trial and a line "
                   f"through the mean at each value, colour by strategy; log x axis where the values span more "
                   f"than a decade. {'; '.join(parts)}.")
            plots.append(Plot("sensitivity", f"Hyperparameter sensitivity — {task}", alt, to_data_uri(fig)))
    return plots
