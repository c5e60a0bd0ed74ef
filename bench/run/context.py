"""The runner's ``CellContext`` (the protocol strategies see, ``bench.core.context``): ``RunContext``.

It owns the cell's data (seeded splits, encoded by the backbone, on the device), the clock, and the shared steps
every strategy is built from: train-and-test through the shared loop, test-only scoring, cached features (the
on-disk cache is ``bench.run.features``) and the source task's data (``bench.plan.sources``). Strategies stay small:
they decide what is trainable, the head, the learning rates, whether to train.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from bench.core.backbone import Backbone
from bench.core.context import Outcome
from bench.core.splits import make_splits
from bench.core.task import Task, TaskData
from bench.core.tensordata import Scores, TensorData
from bench.core.predictions import CellPredictions, SplitPredictions
from bench.plan.sources import source_names
from bench.run import features
from bench.run.taskdata import source_split
from bench.run.train import FitResult, count_params, evaluate, fit


_PARAM_COUNTS: dict[str, int] = {}


def split_predictions(ids: np.ndarray, y: torch.Tensor, scored: Scores) -> SplitPredictions:
    """One split's per-example predictions from the ``Scores`` that ``evaluate`` returned for it (no second
    forward pass). ``pred`` is the one the score was computed from, so ``mean(pred == y)`` is the accuracy."""
    if scored.logits is None or scored.pred is None:
        raise ValueError("these scores carry no per-example predictions (not from bench.run.train.evaluate)")
    proba = torch.softmax(scored.logits.float(), dim=1).half().cpu().numpy()
    return SplitPredictions(np.asarray(ids, dtype=np.int64), y.cpu().numpy().astype(np.int64),
                            np.asarray(scored.pred, dtype=np.int64), proba)


class RunContext:
    """One cell's ``CellContext`` (``bench.core.context``), built by ``bench.run.cell.run_cell``."""

    def __init__(self, task: Task, data: TaskData, backbone: Backbone, params: dict[str, Any], seed: int,
                 fraction: float, device: torch.device, on_epoch: Callable[[dict], None] | None = None):
        self.task, self.meta, self.data, self.backbone = task, task.metadata, data, backbone
        self.params, self.seed, self.device, self.on_epoch = params, seed, device, on_epoch
        self.clock = time.perf_counter()
        self.splits = make_splits(data.train.y, data.test.y, seed, fraction, params["val_size"], params["test_limit"])
        self.generator = torch.Generator().manual_seed(seed)
        self.precision = str(params.get("precision", "auto"))

    @property
    def sizes(self) -> dict[str, int]:
        return {"n_train": len(self.splits.train), "n_val": len(self.splits.val), "n_test": len(self.splits.test)}

    def official(self, which: str) -> TensorData:
        """The whole official ``train`` or ``test`` split, encoded by the backbone (on the CPU)."""
        return features.encoded_split(self.task, self.data, self.backbone, self.params, which)

    def split(self, which: str) -> TensorData:
        """The cell's ``train``, ``val`` or ``test`` data, encoded by the backbone, on the device."""
        source = self.official("test" if which == "test" else "train")
        return source.take(getattr(self.splits, which)).to(self.device)

    def source_split(self, which: str, name: str | None = None) -> TensorData:
        """The source task's (``params["source"]``, or ``name``) ``train``/``val``/``test`` data, encoded by the
        same backbone, on the device (see ``bench.run.taskdata.source_split``)."""
        name = name or source_names(self.params.get("source"))[0]
        # a domain-adaptation strategy (it declares class_map) sees the source's labels as the target's classes
        target = self.meta if "class_map" in self.params else None
        return source_split(name, which, self.backbone, self.params, self.seed, target).to(self.device)

    def unlabelled_target(self) -> TensorData:
        """Every target training sample outside validation, with its labels replaced by -1 (never readable)."""
        train = self.official("train")
        data = train.take(np.setdiff1d(np.arange(len(train)), self.splits.val))
        return TensorData(data.inputs, torch.full_like(data.y, -1)).to(self.device)

    def transform(self, batch):
        return self.backbone.transform(batch, self.params)

    def predictions(self, test: Scores, test_y: torch.Tensor, val: Scores | None = None,
                    val_y: torch.Tensor | None = None) -> CellPredictions:
        """The cell's predictions from the scores of its own test split (and validation split, when scored).

        Ids are the examples' indices in the task's official splits (``test`` → official test, ``val`` → official
        train, see ``bench.core.splits``): every cell of one task shares them, whatever ``test_limit`` kept.
        """
        if len(test_y) != len(self.splits.test) or (val is not None and len(val_y) != len(self.splits.val)):
            raise ValueError("predictions are for the cell's own test and validation splits")
        return CellPredictions(test=split_predictions(self.splits.test, test_y, test),
                               val=split_predictions(self.splits.val, val_y, val) if val is not None else None,
                               classes=tuple(self.meta.classes))

    # --- the shared steps ---------------------------------------------------------------------------------
    def train_and_test(self, model: nn.Module, groups: list[dict[str, Any]], transform=None,
                       data: dict[str, TensorData] | None = None,
                       penalty: Callable[[], torch.Tensor] | None = None) -> Outcome:
        """Train through the shared loop (model selection on validation), then score the test split once.

        ``data``: replaces some of the cell's own ``train``/``val`` splits (source-only trains and selects on the
        source); the test split is always the cell's. Validation predictions are kept only for the cell's own
        validation split. ``penalty``: an optional extra loss term added at every step (see
        ``bench.run.train.fit``)."""
        transform = transform or self.transform
        given = data or {}
        if "test" in given:
            raise ValueError("train_and_test scores the cell's own test split; pass only train/val in data")
        data = {w: given[w] if given.get(w) is not None else self.split(w) for w in ("train", "val", "test")}
        result: FitResult = fit(model, groups, data["train"], data["val"], transform, self.params, self.device,
                                self.meta.main_metric, self.clock, self.on_epoch, self.generator, penalty)
        t0 = time.perf_counter()
        test = evaluate(model, data["test"], transform, int(self.params["eval_batch_size"]), self.precision)
        own_val = given.get("val") is None
        preds = self.predictions(test, data["test"].y, result.best_val if own_val else None,
                                 data["val"].y if own_val else None)
        trainable, total = count_params(model)
        return Outcome(accuracy=test.accuracy, macro_f1=test.macro_f1, val_accuracy=result.best_val.accuracy,
                       curve=result.curve, best_epoch=result.best_epoch, train_time_s=result.train_time_s,
                       eval_time_s=result.eval_time_s + time.perf_counter() - t0,
                       first_epoch_time_s=result.first_epoch_time_s, trainable_params=trainable, total_params=total,
                       throughput=result.throughput, val_macro_f1=result.best_val.macro_f1, predictions=preds)

    def test_only(self, model: nn.Module, transform=None) -> Outcome:
        """Score a model that is not trained on the task's labels (zero-shot); ``transform`` replaces the
        backbone's preprocessing (e.g. to invert images first)."""
        t0 = time.perf_counter()
        batch = int(self.params["eval_batch_size"])
        transform = transform or self.transform
        val_data, test_data = self.split("val"), self.split("test")
        val = evaluate(model, val_data, transform, batch, self.precision)
        test = evaluate(model, test_data, transform, batch, self.precision)
        trainable, total = count_params(model)
        # Zero-shot is its own epoch 0: the one point of its curve, the skill without any target training.
        curve = [{"epoch": 0, "val_accuracy": val.accuracy, "val_macro_f1": val.macro_f1, "epoch_time_s": 0.0,
                  "time_s": time.perf_counter() - self.clock}]
        return Outcome(accuracy=test.accuracy, macro_f1=test.macro_f1, val_accuracy=val.accuracy, curve=curve,
                       eval_time_s=time.perf_counter() - t0, trainable_params=0, total_params=total,
                       val_macro_f1=val.macro_f1, curve_kind="none",
                       predictions=self.predictions(test, test_data.y, val, val_data.y))

    def backbone_param_count(self) -> int:
        """Parameters of the pretrained backbone (counted once per process; probes never build it on a cache hit)."""
        if self.backbone.name not in _PARAM_COUNTS:
            _PARAM_COUNTS[self.backbone.name] = count_params(self.backbone.feature_model(self.params))[1]
        return _PARAM_COUNTS[self.backbone.name]

    def features(self, which: str, make_model: Callable[[], nn.Module]) -> TensorData:
        """Pooled features of the frozen pretrained backbone for the cell's ``which`` split (cached on disk and in
        memory, see ``bench.run.features``); ``make_model`` is only called when some samples are missing."""
        official = "test" if which == "test" else "train"
        # the samples the cell can ask for (train and val share the official training split): computed together
        wanted = self.splits.test if official == "test" else np.union1d(self.splits.train, self.splits.val)
        feats = features.split_features(self.backbone, self.params, self.task, self.data, official, wanted,
                                        getattr(self.splits, which), make_model, self.device)
        return TensorData((feats,), self.official(official).y[getattr(self.splits, which)]).to(self.device)
