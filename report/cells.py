"""Table cells for the report page: what a cell shows, its sort key, and the number formats every section uses.

Sections turn analysis tables into ``Table`` rows of ``TableCell``; the page's template prints them (autoescaped)
and its sorting script orders rows by each cell's ``sort`` key. Imports nothing else of the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TableCell:
    """One cell of a page table: ``text`` to show, ``sort`` key for the sorting script, optional second line and
    class. Not a cell of the run matrix (that is ``bench.plan.suite.Cell``)."""

    text: str
    sort: str = ""
    sub: str = ""
    cls: str = ""
    title: str = ""


@dataclass(frozen=True)
class Table:
    caption: str
    headers: list[tuple[str, str]]  # (label, tooltip)
    rows: list[list[TableCell]]


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def num(x: Any, digits: int = 3, signed: bool = False) -> str:
    if not finite(x):
        return "—"
    x = 0.0 if round(x, digits) == 0 else x  # float noise must not print as "-0.000"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def count(x: Any) -> str:
    """Parameter counts: 12.8 k, 4.0 M."""
    if not finite(x):
        return "—"
    for div, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= div:
            return f"{x / div:.1f}{unit}"
    return f"{x:.0f}"


def seconds(x: Any, signed: bool = False) -> str:
    return "—" if not finite(x) else f"{num(x, 1, signed)} s"


def sort_key(x: Any) -> str:
    return repr(float(x)) if finite(x) else ""


def text_key(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)
