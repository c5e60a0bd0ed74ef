"""A second task in one cell: the ``source`` of domain adaptation and the auxiliary tasks of multi-task learning.

A strategy that learns from another task declares ``needs = ("source",)`` and the parameter ``source`` (a task
name; multi-task strategies accept several, comma-separated). It is an ordinary strategy parameter: it is part of
the cell key, ``--only source=mnist`` selects on it, a list in ``strategy_params`` expands as a grid, and the row
copies it into ``source_task``. Domain-adaptation strategies also set ``source_classes = "same"``: the source
must have the target's classes (same names, in any order), or the ``class_map`` parameter names, for every source
class used, its target class (source classes left out are dropped from the source data).

``check_sources`` runs when the suite is read (one ``UserError`` line before anything runs); ``source_split``
gives a cell the source's data, encoded by the cell's backbone, with a seeded train/validation split of the
source's official training data; ``unlabelled_target`` gives the target's training images without labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bench.core.errors import UserError
from bench.core.splits import make_splits
from bench.core.task import TaskMetadata
from bench.run import features, registry
from bench.run.params import Param, strategy_params
from bench.run.train import TensorData

# How a strategy that learns from a source starts: the backbone's pretrained weights or a random init.
INIT = Param("pretrained", "start from the backbone's pretrained weights or from a random init", str,
             choices=("pretrained", "random"))

if TYPE_CHECKING:  # types only
    from bench.run.context import CellContext
    from bench.run.suite import Suite

__all__ = ["SOURCE", "CLASS_MAP", "MappingParam", "source_names", "check_sources", "label_map", "source_split",
           "unlabelled_target"]

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


def _values(suite: Suite, strategy: str, key: str) -> list[Any]:
    """Every value ``key`` can take in the suite's cells of ``strategy`` (its default when nothing sets it)."""
    declared = strategy_params(registry.get("strategy", strategy)).get(key)
    found = []
    for values in [suite.params] + list(suite.backbone_params.values()) + [suite.strategy_params.get(strategy, {})]:
        if key in values:
            found = values[key] if isinstance(values[key], list) else [values[key]]
    if not found:
        found = [declared.default if declared else None]
    return found


def check_sources(suite: Suite, where: str) -> None:
    """Refuse, in one line, a suite whose source-needing strategies lack a usable source.

    Checked: a strategy with ``needs=("source",)`` has a source; every source names a known task of the target's
    modality; for ``source_classes = "same"`` the classes match (or ``class_map`` maps them onto the target's).
    """
    for name in suite.strategies:
        strategy = registry.get("strategy", name)
        if "source" not in getattr(strategy, "needs", ()):
            continue
        for value in _values(suite, name, "source"):
            names = source_names(value)
            if not names:
                raise UserError(f"{where}: strategy {name!r} needs a source task; add strategy_params: "
                                f"{{{name}: {{source: TASK}}}} (tasks: {', '.join(registry.plugins('task'))})")
            for source in names:
                source_meta = registry.get("task", source).metadata
                for target in suite.tasks:
                    target_meta = registry.get("task", target).metadata
                    if source_meta.modality != target_meta.modality:
                        raise UserError(f"{where}: strategy {name!r}: source {source!r} is a {source_meta.modality} "
                                        f"task, target {target!r} is {target_meta.modality}; use a source of the "
                                        "same modality")
                    if getattr(strategy, "source_classes", "any") == "same":
                        for class_map in _values(suite, name, "class_map"):
                            label_map(source_meta, target_meta, class_map, where)


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


@lru_cache(maxsize=4)
def _load(name: str):
    task = registry.get("task", name)
    return task, task.check_labels(task.load())


def _official(ctx: CellContext, name: str, which: str) -> TensorData:
    task, data = _load(name)
    return features.encoded_split(task, data, ctx.backbone, ctx.params, which)


def source_split(ctx: CellContext, which: str, name: str | None = None) -> TensorData:
    """The source task's ``train``, ``val`` or ``test`` data, encoded by the cell's backbone, on the device.

    Validation is a seeded stratified cut (the cell's seed and ``val_size``) of the source's official training
    split; the source's labels are all used (the cell's fraction concerns the target). When the strategy maps
    classes (``source_classes = "same"``), labels are target class indices and unmapped classes are dropped.
    """
    name = name or source_names(ctx.params.get("source"))[0]
    task, data = _load(name)
    splits = make_splits(data.train.y, data.test.y, ctx.seed, 1.0, ctx.params["val_size"], None)
    official = _official(ctx, name, "test" if which == "test" else "train")
    out = official.take(getattr(splits, which))
    if "class_map" in ctx.params:  # a domain-adaptation strategy: the source's labels are the target's classes
        mapping = label_map(task.metadata, ctx.meta, ctx.params.get("class_map"))
        y = mapping[out.y]
        out = TensorData(out.inputs, y).take(torch.nonzero(y >= 0).flatten())
    return out.to(ctx.device)


def unlabelled_target(ctx: CellContext) -> TensorData:
    """Every target training sample outside validation, with its labels replaced by -1 (never readable)."""
    train = ctx.official("train")
    idx = np.setdiff1d(np.arange(len(train)), ctx.splits.val)
    data = train.take(idx)
    return TensorData(data.inputs, torch.full_like(data.y, -1)).to(ctx.device)
