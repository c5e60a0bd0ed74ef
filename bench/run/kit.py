"""Everything a strategy may use besides the contracts of ``bench.core``: the one helper module of strategies.

A strategy file imports ``bench.core`` (``Strategy``, ``CellContext``, ``Outcome``, ``Param``, ``SkipCell``) and
this module, nothing else of bench (``tests/architecture`` checks it). Here:

- **models**: ``new_classifier`` (the one recipe: backbone + new head for the cell's classes, on the device),
  ``pretrained_model`` (the fine-tuning strategies' case), ``build_classifier`` (strategies that learn from a
  second task: model and groups), ``zero_init_head``, ``freeze``, ``count_params``;
- **parameter groups**: ``head_and_body_groups`` and the shared parameters ``BACKBONE_LR_MULT`` and ``BATCHNORM``;
- **a second task** (``bench.plan.sources``): the parameters ``SOURCE``, ``AUX``, ``INIT``, ``CLASS_MAP``,
  ``source_names``, ``task_metadata``; its data comes from ``ctx.source_split``;
- **loops**: ``fit`` / ``evaluate`` / ``steps_per_epoch`` (the shared loop, ``bench.run.train``), the joint loop of
  domain adaptation and multi-task learning (``bench.run.joint``), the gradient reversal layer (``bench.run.grl``)
  and the solved linear probe (``bench.run.probe``).
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import freeze_batch_norm_2d
from timm.utils.model import freeze as timm_freeze
from torch import nn

from bench.core.context import CellContext
from bench.core.param import Param
from bench.core.task import TaskMetadata
from bench.plan import registry
from bench.run.grl import GradientReversal, dann_lambda
from bench.run.joint import (Batches, cat_inputs, feature_dim, joint_train_and_test, mixed_transformed,
                             multitask_loss)
from bench.run.probe import solve_probe
from bench.plan.sources import AUX, CLASS_MAP, INIT, SOURCE, source_names
from bench.run.train import count_params, evaluate, fit, steps_per_epoch

__all__ = [
    # models and parameter groups
    "new_classifier", "pretrained_model", "build_classifier", "zero_init_head", "freeze", "count_params",
    "head_and_body_groups", "BACKBONE_LR_MULT", "BATCHNORM",
    # a second task
    "SOURCE", "AUX", "INIT", "CLASS_MAP", "source_names", "task_metadata",
    # loops
    "fit", "evaluate", "steps_per_epoch", "Batches", "cat_inputs", "feature_dim", "joint_train_and_test",
    "mixed_transformed", "multitask_loss", "GradientReversal", "dann_lambda", "solve_probe",
]


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


def new_classifier(ctx: CellContext, pretrained: bool = True, *, zero_head: bool = True,
                   frozen_batchnorm: bool | None = None) -> nn.Module:
    """The backbone with a new head for the cell's classes, on the device: the one recipe every strategy's model
    comes from.

    ``pretrained``: the backbone's pretrained weights, or a random init. ``zero_head``: zero the new head's last
    layer (``zero_init_head``). ``frozen_batchnorm`` (default: the ``batchnorm`` parameter, ``frozen`` unless set)
    keeps the pretrained statistics and affine terms fixed while every convolution trains: with small data and
    small batches, batch statistics of the target images would replace the pretrained ones at the first step and
    scramble the very features being fine-tuned.
    """
    model = ctx.backbone.create(ctx.meta.num_classes, pretrained=pretrained, params=ctx.params)
    if zero_head:
        zero_init_head(ctx.backbone.head(model))
    if frozen_batchnorm is None:
        frozen_batchnorm = ctx.params.get("batchnorm", "frozen") == "frozen"
    if frozen_batchnorm:
        model = freeze_batch_norm_2d(model)
    return ctx.backbone.prepare_model(model, ctx.device)


def pretrained_model(ctx: CellContext) -> nn.Module:
    """The fine-tuning strategies' model: pretrained, zero-initialised new head, BatchNorm as ``batchnorm`` says."""
    return new_classifier(ctx)


def build_classifier(ctx: CellContext) -> tuple[nn.Module, list[dict[str, Any]]]:
    """The model of strategies that also learn from a second task, and its AdamW groups: ``init: pretrained`` puts
    the body at ``lr × backbone_lr_mult`` (as full-fine-tune does); ``init: random`` trains every weight at ``lr``
    (as from-scratch does). The head keeps its default init and BatchNorm trains (their recipe since version 1)."""
    params = ctx.params
    pretrained = params.get("init", "pretrained") == "pretrained"
    model = new_classifier(ctx, pretrained, zero_head=False, frozen_batchnorm=False)
    lr = float(params["lr"])
    body_lr = lr * float(params.get("backbone_lr_mult", 0.1)) if pretrained else lr
    return model, head_and_body_groups(model, ctx.backbone.head(model), lr, body_lr)


def task_metadata(name: str) -> TaskMetadata:
    """Another task's metadata (a source or auxiliary task's classes)."""
    return registry.get("task", name).metadata


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
