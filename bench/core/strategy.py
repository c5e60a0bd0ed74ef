"""The strategy plugin contract and the small helpers strategies share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from timm.utils.model import freeze as timm_freeze
from torch import nn

from bench.core.task import TaskMetadata

if TYPE_CHECKING:  # types only: the cell context is built by bench.run, which imports this module
    from bench.backbones.base import Backbone
    from bench.run.context import CellContext, Outcome


class Strategy(ABC):
    """A strategy decides what is trainable, what the head is, the learning rates, and whether to train.

    ``parameters`` is a benchopt-style grid: each value is a list; the first entry is the default, and a list of
    several values expands into several cells. Shared parameters (bench.run.params) may appear here to change the
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

    def skip_reason(self, meta: TaskMetadata, backbone: Backbone) -> str | None:
        """Why this strategy cannot run on this task/backbone (None: it can)."""
        if meta.modality not in self.modalities:
            return f"{self.name}: does not support {meta.modality} tasks"
        return None

    @abstractmethod
    def run(self, ctx: CellContext) -> Outcome:
        """Run one cell and report its outcome."""


def freeze(model: nn.Module, names: list[str]) -> None:
    """Freeze named submodules: no gradients, and BatchNorm turned into FrozenBatchNorm2d (timm's own helper),
    so ``model.train()`` cannot update the running statistics of frozen layers."""
    if names:
        timm_freeze(model, names)


def head_and_body_groups(model: nn.Module, head: nn.Module, lr: float, body_lr: float) -> list[dict[str, Any]]:
    """AdamW groups: the head at ``lr``, every other trainable parameter at ``body_lr``."""
    head_ids = {id(p) for p in head.parameters()}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    return [{"params": list(head.parameters()), "lr": lr}, {"params": body, "lr": body_lr}]
