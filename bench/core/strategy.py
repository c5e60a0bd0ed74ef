"""The strategy plugin contract: ``Strategy.run(ctx: CellContext) -> Outcome`` (both in ``bench.core.context``).

What strategies share beyond the contract (a pretrained model with a new head, parameter groups, the joint loop,
the solved probe) is one helper module, ``bench.run.kit``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from bench.core.backbone import Backbone
from bench.core.context import CellContext, Outcome
from bench.core.task import TaskMetadata


class Strategy(ABC):
    """A strategy decides what is trainable, what the head is, the learning rates, and whether to train.

    ``parameters`` is a benchopt-style grid: each value is a list; the first entry is the default, and a list of
    several values expands into several cells. Shared parameters (bench.plan.params) may appear here to change the
    default for this strategy only.
    """

    kind = "strategy"
    name: str = ""
    description: str = ""
    version = "1"  # bump when the strategy's behaviour changes: it is part of every cell key
    parameters: dict[str, list[Any]] = {}
    modalities: tuple[str, ...] = ("vision", "text")
    # What a cell of this strategy needs besides its target task: ("source",) = a second task, named by the
    # strategy's ``source`` parameter (domain adaptation, multi-task; checked when the suite is read).
    needs: tuple[str, ...] = ()
    # What a suite's ``search:`` may tune for this strategy: None means every shared parameter and its own; a
    # strategy that has none of them (no training, a solved head) declares only what it uses, or ().
    searchable: tuple[str, ...] | None = None
    # Whether a cell starts from the backbone's pretrained weights (unless its ``init`` parameter says ``random``):
    # the suite is checked for weights that cannot be had offline before any cell runs (bench.plan.preflight).
    uses_pretrained: bool = False

    def skip_reason(self, meta: TaskMetadata, backbone: Backbone) -> str | None:
        """Why this strategy cannot run on this task/backbone (None: it can)."""
        if meta.modality not in self.modalities:
            return f"{self.name}: does not support {meta.modality} tasks"
        return None

    @abstractmethod
    def run(self, ctx: CellContext) -> Outcome:
        """Run one cell and report its outcome."""
