"""The figure kit: the report's look, fixed margins, PNG data URIs and one colour per strategy.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot): no global backend switch for whoever
imports the report (a notebook keeps its inline backend), and no figure registry to leak memory in a long run.
Imports nothing of the report but its vocabulary, so every analysis and section may draw with it.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from report.vocabulary import strategy_sort_key

DPI = 80  # enough to read on screen; keeps a 1000-cell report a few MB


@dataclass(frozen=True)
class Plot:
    """One embedded figure: ``src`` is a ``data:image/png;base64,...`` URI."""

    section: str
    title: str
    alt: str
    src: str


@contextmanager
def style() -> Iterator[None]:
    # parse_math off: a task or strategy called "a$b$" must print as text, not as (possibly invalid) TeX
    with sns.axes_style("whitegrid"), matplotlib.rc_context({"text.parse_math": False, "font.size": 9}):
        yield


def margins(fig: Figure, left: float = 0.7, right: float = 0.2, top: float = 0.55, bottom: float = 0.5,
             wspace: float = 0.25, hspace: float = 0.55) -> None:
    """Fixed margins in inches. tight_layout / bbox_inches="tight" each cost an extra full draw, which was most
    of the render time of a 1000-cell report; our axis labels are short and known, so fixed space suffices."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h, wspace=wspace,
                        hspace=hspace)


def to_data_uri(fig: Figure, tight: bool = False) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight" if tight else None, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def strategy_colors(strategies: list[str]) -> dict[str, tuple]:
    """A fixed colour per strategy across all figures (colour-blind safe palette)."""
    names = sorted(set(strategies), key=strategy_sort_key)
    palette = sns.color_palette("colorblind", max(len(names), 1))
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def fmt_score(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3f}"


def plain_log_x(ax, ticks: list[float] | None = None) -> None:
    """Log x scale with plain-number tick labels: the default labels are TeX, which parse_math=False would print
    raw; listing the measured values (the label fractions) as ticks also reads better than powers of ten."""
    ax.set_xscale("log")
    if ticks is not None:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def figure_legend(fig: Figure, axes) -> None:
    """One legend for the whole figure, right of the panels, each label once."""
    seen: dict[str, object] = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="center right", fontsize=7, frameon=False)


def wrap_title(text: str, width_in: float) -> str:
    """Wrap a title to the figure width (task names are free text and may be long)."""
    return textwrap.fill(text, max(int(width_in * 11), 30))


LEGEND_IN = 2.3  # inches reserved right of the panels for the figure legend
# Learning curves are drawn for at most this many label fractions per task/backbone (smallest, largest and
# evenly spaced between): each panel costs ~0.1-0.2 s to draw on 2 cores, and the 1000-cell report must stay
# within 30 s. Every fraction's curve is in the learning_curves CSV.
MAX_CURVE_FRACTIONS = 3


def curve_fractions(fractions: list[float], limit: int = MAX_CURVE_FRACTIONS) -> list[float]:
    """The fractions whose learning curves are drawn: all if few, else the extremes and evenly spaced ones."""
    fractions = sorted(fractions)
    if len(fractions) <= limit:
        return fractions
    picks = np.linspace(0, len(fractions) - 1, limit).round().astype(int)
    return [fractions[i] for i in sorted(set(picks))]
