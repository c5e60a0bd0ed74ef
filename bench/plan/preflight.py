"""Fail before the run, not per cell: what a cell needs that can be known missing before any cell starts.

Today that is pretrained weights: a cell whose strategy starts from them (unless run with ``init: random``) on a
backbone whose weights are neither given, cached, shipped in a package nor reachable online would otherwise start
and record one error row per cell (a strategy says it starts from pretrained weights with ``uses_pretrained``,
``bench.core.strategy``). ``check_cells`` asks each backbone once
(``Backbone.missing_weights``: no model is built, nothing downloaded) and raises one ``UserError`` line naming the
cells (a count and examples), the missing weights and the fixes.

Failures a plugin declares are not errors here: a strategy's ``skip_reason`` records a ``skipped`` row by design.
The suite's own consistency (unknown names, parameter values, a source task whose classes do not match the target)
is checked when the suite is parsed (``bench.plan.suite``).
"""

from __future__ import annotations

from collections.abc import Iterable

from bench.backbones import resolve_backbone
from bench.core.errors import UserError
from bench.plan import registry
from bench.plan.suite import Cell

__all__ = ["check_cells", "uses_pretrained_weights"]

EXAMPLES = 2  # cells named in the message; the rest are counted


def uses_pretrained_weights(cell: Cell) -> bool:
    """Whether the cell starts from the backbone's pretrained weights."""
    if not getattr(registry.get("strategy", cell.strategy), "uses_pretrained", False):
        return False
    return cell.params.get("init", "pretrained") != "random"


def check_cells(cells: Iterable[Cell]) -> None:
    """Raise one UserError line when any of ``cells`` needs pretrained weights that cannot be had."""
    missing: dict[str, tuple[str, list[Cell]]] = {}  # backbone -> (why, its cells)
    answers: dict[str, str | None] = {}
    for cell in cells:
        if not uses_pretrained_weights(cell) or _skipped(cell):
            continue
        if cell.backbone not in answers:
            answers[cell.backbone] = resolve_backbone(cell.backbone).missing_weights()
        if answers[cell.backbone] is not None:
            missing.setdefault(cell.backbone, (answers[cell.backbone], []))[1].append(cell)
    if missing:
        raise UserError(_message(missing))


def _skipped(cell: Cell) -> bool:
    """A cell the strategy skips by design (a ``skipped`` row, not an error) needs no weights."""
    meta = registry.get("task", cell.task).metadata
    return registry.get("strategy", cell.strategy).skip_reason(meta, resolve_backbone(cell.backbone)) is not None


def _message(missing: dict[str, tuple[str, list[Cell]]]) -> str:
    count = sum(len(c) for _, c in missing.values())
    every = [cell for _, cells in missing.values() for cell in cells]
    firsts = list({c.strategy: c for c in reversed(every)}.values())[::-1]  # one example per strategy first
    shown = (firsts + [c for c in every if c not in firsts])[:EXAMPLES]
    examples = "; ".join(c.label() for c in shown) + ("; ..." if count > EXAMPLES else "")
    what = "; ".join(f"{why} ({len(cells)} cell(s): {', '.join(sorted({c.strategy for c in cells}))})"
                     for why, cells in missing.values())
    with_init = sorted({c.strategy for c in every if "init" in registry.get("strategy", c.strategy).parameters})
    fixes = []
    if with_init:
        fixes.append(f"init: random for {', '.join(with_init)} (strategy_params: {{{with_init[0]}: {{init: random}}}})")
    name = next(iter(missing))
    fixes.append(f"a weights file (backbones: ['{name}@/path/weights.safetensors'], or a file in the cache's "
                 f"weights/{name}.safetensors)")
    fixes.append("going online (the model hub)")
    return (f"{count} cell(s) cannot run: {what}; e.g. {examples}; fixes: {', '.join(fixes)}, or drop those "
            "backbones/strategies from the suite")
