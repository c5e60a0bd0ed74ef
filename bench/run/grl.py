"""The gradient reversal layer of DANN (Ganin & Lempitsky 2015; Ganin et al. 2016, JMLR 17(59)).

Identity on the way forward; on the way back the gradient is multiplied by ``-lambda``, so the feature extractor
is trained to *increase* the domain classifier's loss while the domain classifier itself minimises it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GradientReversal", "grad_reverse", "dann_lambda"]


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.neg() * ctx.lam, None


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """``x`` unchanged; its gradient multiplied by ``-lam``."""
    return _Reverse.apply(x, float(lam))


class GradientReversal(nn.Module):
    """``grad_reverse`` as a module; set ``lam`` before each step (the schedule lives with the training loop)."""

    def __init__(self, lam: float = 1.0):
        super().__init__()
        self.lam = lam

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lam)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """The paper's schedule 2 / (1 + exp(-gamma p)) - 1: 0 at the start of training, near 1 at the end."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0
