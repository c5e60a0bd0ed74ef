"""A second task in one cell: the ``source`` of domain adaptation and the auxiliary tasks of multi-task learning.

A strategy that learns from another task declares ``needs = ("source",)`` and the parameter ``source`` (a task
name; multi-task strategies accept several, comma-separated). It is an ordinary strategy parameter: it is part of
the cell key, ``--only source=mnist`` selects on it, a list in ``strategy_params`` expands as a grid, and the row
copies it into ``source_task``. Domain-adaptation strategies also set ``source_classes = "same"``: the source
must have the target's classes (same names, in any order), or the ``class_map`` parameter names, for every source
class used, its target class (source classes left out are dropped from the source data).

``check_sources`` runs when the suite is read (one ``UserError`` line before anything runs); a cell gets the
source's data, encoded by its backbone, from ``CellContext.source_split`` (``bench.run.context``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from bench.core.errors import UserError
from bench.core.task import TaskMetadata
from bench.plan import registry
from bench.plan.params import Param, strategy_params

__all__ = ["SOURCE", "AUX", "INIT", "CLASS_MAP", "MappingParam", "source_names", "label_map", "check_sources"]

# How a strategy that learns from a source starts: the backbone's pretrained weights or a random init.
INIT = Param("pretrained", "start from the backbone's pretrained weights or from a random init", str,
             choices=("pretrained", "random"))
SOURCE = Param(None, "the source task (a task name) this strategy learns from besides the cell's task", str,
               nullable=True)
AUX = Param(None, "the auxiliary task(s) trained jointly with the cell's task: a task name, or several "
            "comma-separated", str, nullable=True)


@dataclass(frozen=True)
class MappingParam(Param):
    """A parameter whose value is a mapping of strings to strings (or null)."""

    def allowed(self) -> str:
        return "a mapping {source class: target class} or null"

    def check(self, key: str, value: Any, where: str) -> None:
        if value is None:
            return
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise UserError(f"{where}: {key}: {value!r} is not allowed; give {self.allowed()}")


CLASS_MAP = MappingParam(None, "source class name -> target class name, when the source's classes are not the "
                         "target's (unmapped source classes are dropped)", str, nullable=True)


def source_names(value: Any) -> list[str]:
    """The task names in a ``source`` value (``"a"`` or ``"a,b"``); empty for null."""
    if value is None:
        return []
    return [name.strip() for name in str(value).split(",") if name.strip()]


def label_map(source: TaskMetadata, target: TaskMetadata, class_map: dict[str, str] | None,
              where: str = "class_map") -> torch.Tensor:
    """Target label index for each source label index (-1: dropped); raises UserError when they cannot match."""
    if class_map is None:
        if sorted(source.classes) != sorted(target.classes):
            extra = sorted(set(source.classes) ^ set(target.classes))[:4]
            raise UserError(f"{where}: source {source.name!r} and target {target.name!r} have different classes "
                            f"({len(source.classes)} vs {len(target.classes)}; e.g. {', '.join(map(repr, extra))}); "
                            "give class_map: {SOURCE_CLASS: TARGET_CLASS} in strategy_params")
        class_map = {c: c for c in source.classes}
    unknown = [k for k in class_map if k not in source.classes] + [v for v in class_map.values()
                                                                   if v not in target.classes]
    if unknown:
        raise UserError(f"{where}: class_map names {unknown[0]!r}, which is not a class of source {source.name!r} "
                        f"(keys) or target {target.name!r} (values)")
    return torch.tensor([target.classes.index(class_map[c]) if c in class_map else -1 for c in source.classes])


# strategy name -> the parameter mappings that set its cells' values, later ones winning (the suite's ``params``,
# its ``backbone_params`` of each backbone, its ``strategy_params`` of that strategy).
ParamLayers = Callable[[str], list[dict[str, Any]]]


def _values(layers: ParamLayers, strategy: str, key: str) -> list[Any]:
    """Every value ``key`` can take in the suite's cells of ``strategy`` (its default when nothing sets it)."""
    declared = strategy_params(registry.get("strategy", strategy)).get(key)
    found = []
    for values in layers(strategy):
        if key in values:
            found = values[key] if isinstance(values[key], list) else [values[key]]
    if not found:
        found = [declared.default if declared else None]
    return found


def check_sources(tasks: list[str], strategies: list[str], layers: ParamLayers, where: str) -> None:
    """Refuse, in one line, a suite whose source-needing strategies lack a usable source.

    Checked: a strategy with ``needs=("source",)`` has a source; every source names a known task of the target's
    modality; for ``source_classes = "same"`` the classes match (or ``class_map`` maps them onto the target's).
    """
    for name in strategies:
        strategy = registry.get("strategy", name)
        if "source" not in getattr(strategy, "needs", ()):
            continue
        for value in _values(layers, name, "source"):
            names = source_names(value)
            if not names:
                raise UserError(f"{where}: strategy {name!r} needs a source task; add strategy_params: "
                                f"{{{name}: {{source: TASK}}}} (tasks: {', '.join(registry.plugins('task'))})")
            for source in names:
                source_meta = registry.get("task", source).metadata
                for target in tasks:
                    target_meta = registry.get("task", target).metadata
                    if source_meta.modality != target_meta.modality:
                        raise UserError(f"{where}: strategy {name!r}: source {source!r} is a {source_meta.modality} "
                                        f"task, target {target!r} is {target_meta.modality}; use a source of the "
                                        "same modality")
                    if getattr(strategy, "source_classes", "any") == "same":
                        for class_map in _values(layers, name, "class_map"):
                            label_map(source_meta, target_meta, class_map, where)
