"""Training on two tasks at once: the loop of domain adaptation (DANN) and multi-task learning.

The shared loop (``bench.run.train.fit``) draws batches from one labelled set; here every step draws from several
(source and target, or target and auxiliary tasks) and a strategy-supplied ``step_loss`` combines them. The
conventions are the shared loop's: AdamW over parameter groups, linear warmup then cosine decay, bf16 autocast on
CUDA and fp32 on CPU, one host sync per epoch (where a NaN loss is detected), precise BatchNorm before each
validation, model selection on the target's validation split, the test split scored once at the end, one curve
point per epoch with its validation accuracy.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.core.backbone import Inputs
from bench.core.context import CellContext, Outcome
from bench.core.tensordata import TensorData
from bench.run.train import (FitResult, ModelSelection, autocast, count_params, evaluate, make_optimizer,
                             planned_epochs, recalibrate_batchnorm, steps_per_epoch, sync, warmup_cosine)

__all__ = ["Batches", "StepLoss", "cat_inputs", "feature_dim", "fit_joint", "joint_train_and_test",
           "mixed_transformed", "multitask_loss"]

# step_loss(progress in [0, 1)) -> (loss, correct predictions, labelled samples in the step), inside autocast.
StepLoss = Callable[[float], tuple[torch.Tensor, torch.Tensor, int]]


class Batches:
    """Endless random batches of one dataset (a fresh seeded permutation whenever the current one runs short)."""

    def __init__(self, data: TensorData, batch_size: int, generator: torch.Generator):
        self.data, self.batch, self.generator = data, min(batch_size, len(data)), generator
        self.order = torch.empty(0, dtype=torch.long)

    def next(self) -> tuple[Inputs, torch.Tensor]:
        if len(self.order) < self.batch:
            self.order = torch.randperm(len(self.data), generator=self.generator)
        idx, self.order = self.order[: self.batch].to(self.data.y.device), self.order[self.batch:]
        return tuple(t[idx] for t in self.data.inputs), self.data.y[idx]


def cat_inputs(parts: list[Inputs]) -> Inputs:
    """Concatenate transformed batches along the batch axis; token batches cut to different lengths (the text
    backbones' CPU transform) are right-padded with 0, the pad id and empty mask of both text backbones."""
    out = []
    for tensors in zip(*parts):
        if tensors[0].dim() >= 2 and len({t.shape[1:] for t in tensors}) > 1:
            longest = max(t.shape[1] for t in tensors)
            tensors = [F.pad(t, (0, longest - t.shape[1])) for t in tensors]
        out.append(torch.cat(list(tensors)))
    return tuple(out)


@torch.no_grad()
def feature_dim(ctx: CellContext, model: nn.Module, sample: TensorData) -> int:
    """Width of the backbone's pooled features (read off one forward pass, whatever the backbone)."""
    was_training = model.training
    model.eval()
    inputs = ctx.transform(tuple(t[:2] for t in sample.inputs))
    width = int(ctx.backbone.features(model, *inputs).shape[1])
    model.train(was_training)
    return width


def mixed_transformed(ctx: CellContext, parts: list[TensorData], max_samples: int) -> TensorData:
    """Up to ``max_samples`` samples drawn evenly from several sets (domains of different raw image sizes),
    already transformed, in one seeded random order: precise BatchNorm then sees mixed-domain batches, as DANN's
    concatenated training batches did. Use with an identity transform."""
    each = max(max_samples // max(len(parts), 1), 1)
    chunks = []
    for part in parts:
        idx = torch.randperm(len(part), generator=ctx.generator)[:each].to(part.y.device)
        sub = part.take(idx)
        step = int(ctx.params["eval_batch_size"])
        with torch.no_grad():
            chunks += [ctx.transform(tuple(t[i:i + step] for t in sub.inputs)) for i in range(0, len(sub), step)]
    inputs = cat_inputs(chunks)
    y = torch.zeros(len(inputs[0]), dtype=torch.long, device=inputs[0].device)
    return TensorData(inputs, y).take(torch.randperm(len(y), generator=ctx.generator))


def multitask_loss(model: nn.Module, heads: list[nn.Module], features: Callable[..., torch.Tensor],
                   batches: list[tuple[Inputs, torch.Tensor]], weights: list[float],
                   label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Weighted sum of each task's cross-entropy; batch 0 is the target task (the model's own head), batch k > 0
    goes through ``heads[k - 1]`` on the shared ``features``.

    Every task's batch gets its own forward pass, so with a weight of 0 an auxiliary task changes no gradient
    (and BatchNorm sees one task per batch, not a mix). Returns (loss, target hits, target batch size).
    """
    loss = torch.zeros((), device=batches[0][1].device)
    hits, n = torch.zeros((), device=loss.device), 0
    for k, ((inputs, y), weight) in enumerate(zip(batches, weights)):
        logits = (heads[k - 1](features(*inputs)) if k else model(*inputs)).float()
        loss = loss + weight * F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        if k == 0:
            hits, n = (logits.argmax(1) == y).sum(), len(y)
    return loss, hits, n


def fit_joint(model: nn.Module, groups: list[dict], step_loss: StepLoss, per_epoch: int, val: TensorData,
              bn_data: TensorData, ctx: CellContext, extra: nn.Module | None = None,
              bn_transform: Callable[[Inputs], Inputs] | None = None) -> FitResult:
    """Train with ``step_loss`` for ``epochs × per_epoch`` steps, keep the epoch best on ``val`` (restored).

    Raises:
        FloatingPointError: the training loss became NaN or infinite (the cell is recorded as an error).
    """
    params, device, precision = ctx.params, ctx.device, ctx.precision
    epochs = planned_epochs(params, per_epoch)
    total = epochs * per_epoch
    optimizer = make_optimizer(groups, params, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, params["warmup"]))
    trained = [model] + ([extra] if extra is not None else [])
    result = FitResult()
    selection = ModelSelection(ctx.meta.main_metric, params.get("patience"))
    step = 0
    # Epoch 0, as in the shared loop: the skill before any step, a point of the curve, not a selection candidate.
    t1 = time.perf_counter()
    before = evaluate(model, val, ctx.transform, int(params["eval_batch_size"]), precision)
    result.eval_time_s += time.perf_counter() - t1
    result.curve.append({"epoch": 0, "val_accuracy": before.accuracy, "val_macro_f1": before.macro_f1,
                         "epoch_time_s": 0.0, "time_s": time.perf_counter() - ctx.clock})
    for epoch in range(1, epochs + 1):
        for module in trained:
            module.train()
        sync(device)
        t0 = time.perf_counter()
        loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
        for _ in range(per_epoch):
            with autocast(device, precision):
                loss, hits, n = step_loss(step / total)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            loss_sum += loss.detach()
            correct += hits
            seen += n
        sync(device)
        epoch_time = time.perf_counter() - t0
        mean_loss = loss_sum.item() / per_epoch
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"training loss is {mean_loss} at epoch {epoch}; lower the learning rate")
        result.train_time_s += epoch_time
        result.samples_seen += seen
        if epoch == 1:
            result.first_epoch_time_s = epoch_time
        t1 = time.perf_counter()
        recalibrate_batchnorm(model, bn_data, bn_transform or ctx.transform, int(params["eval_batch_size"]),
                              int(params.get("precise_bn") or 0), precision)
        val_scores = evaluate(model, val, ctx.transform, int(params["eval_batch_size"]), precision)
        result.eval_time_s += time.perf_counter() - t1
        point = {"epoch": epoch, "train_loss": mean_loss, "train_accuracy": correct.item() / max(seen, 1),
                 "val_accuracy": val_scores.accuracy, "val_macro_f1": val_scores.macro_f1,
                 "epoch_time_s": epoch_time, "time_s": time.perf_counter() - ctx.clock}
        result.curve.append(point)
        if ctx.on_epoch:
            ctx.on_epoch(point)
        if selection.stop_after(model, epoch, val_scores, result):
            break
    selection.restore(model)
    return result


def joint_train_and_test(ctx: CellContext, model: nn.Module, groups: list[dict], step_loss: StepLoss,
                         per_epoch: int | None = None, bn_data: TensorData | None = None,
                         extra: nn.Module | None = None, bn_transform: Callable[[Inputs], Inputs] | None = None
                         ) -> Outcome:
    """``fit_joint`` with selection on the target's validation split, then the target's test split scored once.

    ``extra``: modules trained alongside ``model`` but not part of the classifier (a domain discriminator,
    auxiliary heads); their parameters count as trainable in the row. ``per_epoch``: steps per epoch (default:
    from the target's labelled training split). ``bn_data``/``bn_transform``: what precise BatchNorm averages
    over (default: the target's labelled training split through the backbone's transform).
    """
    train = ctx.split("train")
    batch = int(ctx.params["batch_size"])
    per_epoch = per_epoch or steps_per_epoch(len(train), min(batch, len(train)),
                                             int(ctx.params.get("min_steps_per_epoch", 10)))
    val = ctx.split("val")
    result = fit_joint(model, groups, step_loss, per_epoch, val, bn_data if bn_data is not None else train, ctx,
                       extra, bn_transform)
    t0 = time.perf_counter()
    test_data = ctx.split("test")
    test = evaluate(model, test_data, ctx.transform, int(ctx.params["eval_batch_size"]), ctx.precision)
    preds = ctx.predictions(test, test_data.y, result.best_val, val.y)
    trainable, total = count_params(nn.ModuleList([model] + ([extra] if extra is not None else [])))
    return Outcome(accuracy=test.accuracy, macro_f1=test.macro_f1, val_accuracy=result.best_val.accuracy,
                   curve=result.curve, best_epoch=result.best_epoch, train_time_s=result.train_time_s,
                   eval_time_s=result.eval_time_s + time.perf_counter() - t0,
                   first_epoch_time_s=result.first_epoch_time_s, trainable_params=trainable, total_params=total,
                   throughput=result.throughput, val_macro_f1=result.best_val.macro_f1, predictions=preds)
