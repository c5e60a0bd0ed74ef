"""L2-SP (Li, Grandvalet, Davoine 2018, "Explicit inductive bias for transfer learning with convolutional
networks"): full fine-tuning whose weights are pulled towards the pretrained starting point instead of zero.

Loss = cross-entropy + alpha/2 ‖w − w0‖² over the pretrained backbone's trainable weights (w0 = the pretrained
values) + beta/2 ‖w_head‖² over the new head. AdamW's own weight decay is off by default (``weight_decay: 0``):
decay towards zero is exactly what the penalty replaces. Everything else is full-fine-tune's recipe (pretrained
BatchNorm frozen, backbone at ``lr × backbone_lr_mult``), so the two differ only by the penalty.

Defaults alpha = beta = 0.01: the scale of the paper's setting (it searched alpha in {0.001, 0.01, 0.1, 1} and used
beta = 0.01); the paper trained with SGD, here the penalty goes through AdamW like every other strategy. For word
vectors the "backbone" is the embedding table (its trainable rows) and the head is the MLP above it.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from bench.core.param import Param
from bench.core.strategy import Strategy
from bench.run.kit import BACKBONE_LR_MULT, BATCHNORM, head_and_body_groups, pretrained_model


def l2_sp_penalty(model: nn.Module, head: nn.Module, alpha: float, beta: float) -> Callable[[], torch.Tensor]:
    """The L2-SP penalty of ``model`` as a closure, with w0 = the current values of its non-head parameters.

    Only trainable parameters count (frozen ones cannot move). Call it after the model is on its device.
    """
    head_ids = {id(p) for p in head.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    start = [p.detach().clone() for p in body]
    head_params = [p for p in head.parameters() if p.requires_grad]

    def penalty() -> torch.Tensor:
        zero = torch.zeros((), device=body[0].device if body else head_params[0].device)
        drift = sum(((p.float() - p0.float()) ** 2).sum() for p, p0 in zip(body, start)) if body else zero
        size = sum((p.float() ** 2).sum() for p in head_params) if head_params else zero
        return alpha / 2 * drift + beta / 2 * size

    return penalty


class L2SP(Strategy):
    name = "l2-sp"
    uses_pretrained = True
    version = "2"  # 1: the new head kept its random init (2: zero-initialised, see pretrained_model)
    description = "full fine-tune with alpha/2·‖w − w_pretrained‖² on the backbone and beta/2·‖w_head‖² on the head"
    parameters = {"alpha": Param(0.01, "strength of the pull towards the pretrained backbone weights", float, 0, 1e6),
                  "beta": Param(0.01, "L2 strength on the new head", float, 0, 1e6),
                  "backbone_lr_mult": BACKBONE_LR_MULT, "batchnorm": BATCHNORM,
                  "weight_decay": [0.0]}  # the penalty replaces AdamW's decay

    def run(self, ctx):
        backbone, params = ctx.backbone, ctx.params
        model = pretrained_model(ctx)
        head = backbone.head(model)
        penalty = l2_sp_penalty(model, head, float(params["alpha"]), float(params["beta"]))
        body_lr = params["lr"] * params["backbone_lr_mult"]
        return ctx.train_and_test(model, head_and_body_groups(model, head, params["lr"], body_lr), penalty=penalty)
