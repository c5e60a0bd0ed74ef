"""A second task in one cell: the ``source`` of domain adaptation and the auxiliary tasks of multi-task learning.

A strategy that learns from another task declares ``needs = ("source",)`` and the parameter ``source`` (a task
name; multi-task strategies accept several, comma-separated). It is an ordinary strategy parameter: it is part of
the cell key, ``--only source=mnist`` selects on it, a list in ``strategy_params`` expands as a grid, and the row
copies it into ``source_task``. Domain-adaptation strategies also set ``source_classes = "same"``: the source
must have the target's classes (same names, in any order), or the ``class_map`` parameter names, for every source
class used, its target class (source classes left out are dropped from the source data).

The suite reader checks the sources (``bench.run.suite_checks.check_sources``: one ``UserError`` line before
anything runs); ``source_split`` gives a cell the source's data, encoded by the cell's backbone, with a seeded
train/validation split of the source's official training data (``CellContext.source_split``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bench.core.backbone import Backbone
from bench.core.errors import UserError
from bench.core.splits import make_splits
from bench.core.task import TaskMetadata
from bench.core.tensordata import TensorData
from bench.run import features, registry
from bench.run.params import Param
from bench.run.taskdata import load_task_data

__all__ = ["SOURCE", "AUX", "INIT", "CLASS_MAP", "MappingParam", "source_names", "label_map", "source_split"]

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


def source_split(name: str, which: str, backbone: Backbone, params: dict[str, Any], seed: int,
                 target: TaskMetadata | None = None) -> TensorData:
    """Task ``name``'s ``train``, ``val`` or ``test`` data, encoded by ``backbone`` (on the CPU).

    Validation is a seeded stratified cut (``seed`` and ``params["val_size"]``) of the source's official training
    split; the source's labels are all used (a cell's fraction concerns its target). With ``target`` (domain
    adaptation, ``source_classes = "same"``), labels become ``target``'s class indices through
    ``params["class_map"]`` and source classes it leaves out are dropped.
    """
    task, data = registry.get("task", name), load_task_data(name)
    splits = make_splits(data.train.y, data.test.y, seed, 1.0, params["val_size"], None)
    official = features.encoded_split(task, data, backbone, params, "test" if which == "test" else "train")
    out = official.take(getattr(splits, which))
    if target is not None:
        y = label_map(task.metadata, target, params.get("class_map"))[out.y]
        out = TensorData(out.inputs, y).take(torch.nonzero(y >= 0).flatten())
    return out
