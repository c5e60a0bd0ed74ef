"""The strategy plugin contract and the small helpers strategies share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import torch
from timm.layers import freeze_batch_norm_2d
from timm.utils.model import freeze as timm_freeze
from torch import nn

from bench.core.param import Param
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
    # Whether a cell starts from the backbone's pretrained weights (unless its ``init`` parameter says ``random``):
    # the suite is checked for weights that cannot be had offline before any cell runs (bench.run.preflight).
    uses_pretrained: bool = False

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


BATCHNORM = Param("frozen", "pretrained BatchNorm statistics: frozen (kept) or train (batch statistics)", str,
                  choices=("frozen", "train"))
BACKBONE_LR_MULT = Param(0.1, "backbone learning rate = lr × backbone_lr_mult (the new head trains at lr)", float, 0,
                         100)


def pretrained_model(ctx: CellContext) -> nn.Module:
    """The pretrained model with a new head for the cell's classes, on the device, BatchNorm as ``batchnorm`` says.

    ``batchnorm: frozen`` (the default of the fine-tuning strategies) keeps the pretrained statistics and affine
    terms fixed while every convolution trains: with small data and small batches, batch statistics of the target
    images would replace the pretrained ones at the first step and scramble the very features being fine-tuned.
    """
    model = ctx.backbone.create(ctx.meta.num_classes, pretrained=True, params=ctx.params)
    zero_init_head(ctx.backbone.head(model))
    if ctx.params.get("batchnorm", "frozen") == "frozen":
        model = freeze_batch_norm_2d(model)
    return ctx.backbone.prepare_model(model, ctx.device)


def zero_init_head(head: nn.Module) -> None:
    """Zero the last linear layer of a new head (BiT's recipe): every class starts at the same logit.

    A default-initialised head on large pretrained features starts with logits in the tens (a first-epoch loss of
    5-9 on ten classes was measured on Fashion-MNIST with EfficientNet-Lite0), and the first steps' large gradients
    then move the pretrained body at random, differently for every seed.
    """
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if linears:
        with torch.no_grad():
            linears[-1].weight.zero_()
            if linears[-1].bias is not None:
                linears[-1].bias.zero_()
