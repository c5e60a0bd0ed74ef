"""What a strategy sees of its cell (``CellContext``) and what it hands back (``Outcome``).

``Strategy.run(ctx: CellContext) -> Outcome`` is the whole plugin contract of a strategy; both types live here, in
the bottom layer, so a strategy author reads one place. ``CellContext`` is a Protocol: the runner's implementation
is ``bench.run.context.RunContext`` (seeded splits, encoded data on the device, the feature cache, the shared
training loop). What strategies share beyond it (a pretrained model with a new head, parameter groups, the joint
loop of domain adaptation, the solved probe) is in one helper module, ``bench.run.kit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import nn

from bench.core.backbone import Backbone, Inputs
from bench.core.predictions import CellPredictions
from bench.core.task import Task, TaskData, TaskMetadata
from bench.core.tensordata import Scores, TensorData

__all__ = ["CellContext", "Outcome", "Splits"]


@dataclass
class Outcome:
    """What a strategy reports for its cell (the runner adds identity, timings and provenance)."""

    accuracy: float
    macro_f1: float
    val_accuracy: float
    curve: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    feature_time_s: float = 0.0
    first_epoch_time_s: float | None = None
    trainable_params: int = 0
    total_params: int = 0
    throughput: float | None = None
    val_macro_f1: float | None = None  # validation macro-F1 (model selection on tasks whose main metric it is)
    curve_kind: str = "sgd"  # what the curve's points are: "sgd" epochs, an "l2-path" of a solved probe, "none"
    # Per-example test and validation predictions (bench.core.predictions). Not a row column: bench.run.cell
    # takes them out of the row and hands them to the orchestrator, which writes predictions/<key>.npz.
    predictions: CellPredictions | None = field(default=None, repr=False, compare=False)

    @property
    def epochs_run(self) -> int:
        """Training epochs (the curve's epoch-0 point, the score before training, is not one)."""
        return sum(1 for point in self.curve if point.get("epoch", 1) != 0)


class Splits(Protocol):
    """A cell's sample indices: ``train`` and ``val`` index the task's official training split, ``test`` its
    official test split (``bench.core.splits.make_splits``)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


class CellContext(Protocol):
    """Everything a strategy may use to run one cell.

    Attributes: the task and its ``meta``data, the loaded ``data``, the ``backbone``, the cell's merged ``params``,
    ``seed``, ``device``, ``splits``, a seeded ``generator`` for the strategy's own draws, the autocast
    ``precision``, the cell's ``clock`` start, and ``on_epoch`` (the per-epoch callback a custom loop calls with
    each curve point).
    """

    task: Task
    meta: TaskMetadata
    data: TaskData
    backbone: Backbone
    params: dict[str, Any]
    seed: int
    device: torch.device
    splits: Splits
    generator: torch.Generator
    precision: str
    clock: float
    on_epoch: Callable[[dict], None] | None

    @property
    def sizes(self) -> dict[str, int]:
        """``n_train``, ``n_val``, ``n_test`` of the cell."""

    def split(self, which: str) -> TensorData:
        """The cell's ``train``, ``val`` or ``test`` data, encoded by the backbone, on the device."""

    def official(self, which: str) -> TensorData:
        """The whole official ``train`` or ``test`` split, encoded by the backbone (on the CPU)."""

    def source_split(self, which: str, name: str | None = None) -> TensorData:
        """The source task's (``params["source"]``, or ``name``) ``train``/``val``/``test`` data, encoded by the
        same backbone, on the device; labels mapped onto the target's classes for domain adaptation."""

    def unlabelled_target(self) -> TensorData:
        """Every target training sample outside validation, labels replaced by -1 (never readable)."""

    def transform(self, batch: Inputs) -> Inputs:
        """The backbone's on-device preprocessing of one batch."""

    def features(self, which: str, make_model: Callable[[], nn.Module]) -> TensorData:
        """Pooled features of the frozen pretrained backbone for the cell's ``which`` split (cached on disk);
        ``make_model`` is only called when some samples are missing from the cache."""

    def backbone_param_count(self) -> int:
        """Parameters of the pretrained backbone."""

    def predictions(self, test: Scores, test_y: torch.Tensor, val: Scores | None = None,
                    val_y: torch.Tensor | None = None) -> CellPredictions:
        """The cell's per-example predictions from the scores of its own test (and validation) split."""

    def train_and_test(self, model: nn.Module, groups: list[dict[str, Any]], transform=None,
                       data: dict[str, TensorData] | None = None,
                       penalty: Callable[[], torch.Tensor] | None = None) -> Outcome:
        """Train through the shared loop (model selection on validation), then score the test split once."""

    def test_only(self, model: nn.Module, transform=None) -> Outcome:
        """Score a model that is not trained on the task's labels (zero-shot)."""
