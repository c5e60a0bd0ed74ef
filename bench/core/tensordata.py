"""The data a cell moves around: a split encoded by its backbone (``TensorData``) and a split's scores (``Scores``).

Whole tensors on one device: the shared loop (``bench.run.train``) batches by index gathers, with no per-image
loader. Strategies meet both through ``bench.core.context.CellContext``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from bench.core.backbone import Inputs

__all__ = ["TensorData", "Scores"]


@dataclass
class TensorData:
    """Inputs (a tuple of tensors of equal length) and int64 labels, kept whole on one device."""

    inputs: Inputs
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> "TensorData":
        return TensorData(tuple(t.to(device, non_blocking=True) for t in self.inputs), self.y.to(device))

    def take(self, idx: torch.Tensor | np.ndarray) -> "TensorData":
        idx = torch.as_tensor(idx, device=self.y.device)
        return TensorData(tuple(t[idx] for t in self.inputs), self.y[idx])


@dataclass
class Scores:
    """A split's scores, with the per-example evidence behind them: ``pred`` (the predicted class, numpy int64)
    and ``logits`` (float32, on the data's device), kept so a cell can store its predictions without a second
    forward pass (``bench.run.context.split_predictions``)."""

    accuracy: float
    macro_f1: float
    pred: np.ndarray | None = field(default=None, repr=False, compare=False)
    logits: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def get(self, metric: str) -> float:
        return getattr(self, metric)
