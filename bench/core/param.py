"""A declared parameter: type, range or choices, default, one-line help (what a strategy's ``parameters`` hold).

The shared parameters every strategy understands are declared in ``bench.plan.params``; a strategy declares its
own in its file. The suite schema checks every value against its declaration before any cell runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.core.errors import UserError

__all__ = ["AnyValue", "Param"]


@dataclass(frozen=True)
class Param:
    """One declared parameter. Bounds are inclusive unless ``open_low`` (then ``value > low``)."""

    default: Any
    help: str
    type: type = float
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    open_low: bool = False
    grid: tuple[Any, ...] = field(default=())  # default grid (several values expand into several cells)

    def allowed(self) -> str:
        """What values are allowed, in words (for error messages and ``list``)."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[self.type]
            if self.low is not None and self.high is not None:
                text += f" in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}]"
            elif self.low is not None:
                text += f" {'>' if self.open_low else '>='} {self.low:g}"
            elif self.high is not None:
                text += f" <= {self.high:g}"
        return text + (" or null" if self.nullable else "")

    def check(self, key: str, value: Any, where: str) -> None:
        """Raise a one-line UserError naming ``key``, ``value`` and what is allowed, unless ``value`` fits."""
        if value is None and (self.nullable or self.default is None):
            return
        if not self._fits(value):
            raise UserError(f"{where}: {key}: {value!r} is not allowed; give {self.allowed()}")

    def _fits(self, value: Any) -> bool:
        if self.choices is not None:
            return any(value == c and type(value) is type(c) for c in self.choices)
        if self.type is bool:
            return isinstance(value, bool)
        if isinstance(value, bool):
            return False
        if self.type is int:
            ok = isinstance(value, int)
        elif self.type is float:
            ok = isinstance(value, (int, float)) and math.isfinite(value)
        else:
            ok = isinstance(value, self.type)
        if not ok:
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or value <= self.high


@dataclass(frozen=True)
class AnyValue(Param):
    """A parameter whose values only the plugin itself checks (declared as a plain list with no scalar type)."""

    def allowed(self) -> str:
        return "any value"

    def check(self, key: str, value: Any, where: str) -> None:
        return None
