"""Task data in a cell's process: the one cache of loaded tasks, and a second task's data for a cell.

A cell's target task, its source tasks and a pretraining task all come through ``load_task_data``, so a task is
loaded (and its labels checked) once per process. ``source_split`` gives the data of a strategy's source task
(``CellContext.source_split``), encoded by the cell's backbone through the shared encoding cache.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from bench.core.backbone import Backbone
from bench.core.splits import make_splits
from bench.core.task import TaskData, TaskMetadata
from bench.core.tensordata import TensorData
from bench.plan import registry
from bench.plan.sources import label_map
from bench.run import features

__all__ = ["load_task_data", "source_split"]


@lru_cache(maxsize=4)  # a target, its source(s) and a pretraining task; whole datasets, so not more
def load_task_data(task_name: str) -> TaskData:
    """The task's official splits, labels checked against its classes."""
    task = registry.get("task", task_name)
    return task.check_labels(task.load())


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
