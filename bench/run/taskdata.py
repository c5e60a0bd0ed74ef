"""The one in-process cache of loaded task data: a cell's target task, its source tasks and a pretraining task
all come through ``load_task_data``, so a task is loaded (and its labels checked) once per process."""

from __future__ import annotations

from functools import lru_cache

from bench.core.task import TaskData
from bench.run import registry

__all__ = ["load_task_data"]


@lru_cache(maxsize=4)  # a target, its source(s) and a pretraining task; whole datasets, so not more
def load_task_data(task_name: str) -> TaskData:
    """The task's official splits, labels checked against its classes."""
    task = registry.get("task", task_name)
    return task.check_labels(task.load())
