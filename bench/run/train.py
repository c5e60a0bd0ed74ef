"""The shared training loop: every strategy trains through ``fit`` and is scored through ``evaluate``.

AdamW with linear warmup then cosine decay; bf16 autocast and channels_last on CUDA, fp32 on CPU. Data sits on
the device as whole tensors and batches are index gathers (no per-image CPU loader). The inner loop never syncs
with the host: loss and accuracy are summed on the device and read once per epoch, which is also when a NaN loss
is detected. Shapes are fixed (the ragged last batch is dropped) so cudnn autotuning runs once.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import nn

from bench.core.backbone import Inputs
from bench.core.tensordata import Scores, TensorData

Transform = Callable[[Inputs], Inputs]
# On the CPU a no-grad forward pass over 256 images costs ~2.5x more per image than over 64 (the activations no
# longer fit in cache; tf_efficientnet_lite0 at 64 px, `python -m bench.tools.loop_bench`, see bench/PERF.md), so
# evaluation runs in chunks of at most this many samples there. Eval mode treats samples independently: the same
# predictions, up to float rounding.
CPU_EVAL_CHUNK = 64


@dataclass
class FitResult:
    curve: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_val: Scores | None = None
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    first_epoch_time_s: float = 0.0
    samples_seen: int = 0

    @property
    def throughput(self) -> float:
        return self.samples_seen / self.train_time_s if self.train_time_s > 0 else 0.0


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts.

    Frozen BatchNorm layers (timm's freeze) keep their affine weight and bias as buffers; they still count.
    """
    params = list(model.parameters())
    frozen_affine = sum(b.numel() for name, b in model.named_buffers() if name.endswith((".weight", ".bias")))
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params) + frozen_affine


def autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast on CUDA by default (no loss scaling needed); fp32 on CPU, where bf16 is slower."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def predict(model: nn.Module, data: TensorData, transform: Transform, batch_size: int,
            precision: str = "auto") -> torch.Tensor:
    """Logits for every sample, in order, as float32 on the data's device."""
    model.eval()
    device = data.y.device
    step = min(batch_size, CPU_EVAL_CHUNK) if device.type == "cpu" else batch_size
    out = []
    for start in range(0, len(data), step):
        batch = tuple(t[start:start + step] for t in data.inputs)
        with autocast(device, precision):
            out.append(model(*transform(batch)).float())
    return torch.cat(out) if out else torch.empty(0)


def scores(logits: torch.Tensor, y: torch.Tensor) -> Scores:
    pred = logits.argmax(1).cpu().numpy()
    truth = y.cpu().numpy()
    return Scores(float((pred == truth).mean()), float(f1_score(truth, pred, average="macro", zero_division=0)),
                  pred=pred, logits=logits)


def evaluate(model: nn.Module, data: TensorData, transform: Transform, batch_size: int,
             precision: str = "auto") -> Scores:
    return scores(predict(model, data, transform, batch_size, precision), data.y)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, train: TensorData, transform: Transform, batch_size: int,
                          max_samples: int, precision: str = "auto") -> None:
    """Precise BatchNorm (Wu & Johnson 2021): replace the running statistics of trainable BatchNorm layers by
    exact averages over up to ``max_samples`` training samples under the current weights.

    Running averages with momentum 0.1 trail the weights by ~10 steps; a small-data run of a few dozen steps is
    then evaluated with statistics of weights it no longer has (train accuracy 0.8, validation 0.14 was seen).
    Frozen BatchNorm layers (timm's FrozenBatchNorm) are not ``_BatchNorm`` and keep their pretrained statistics.
    """
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not layers or max_samples <= 0:
        return
    was_training = model.training
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    device = train.y.device
    for start in range(0, min(len(train), max_samples), batch_size):
        batch = tuple(t[start:min(start + batch_size, max_samples)] for t in train.inputs)
        with autocast(device, precision):
            model(*transform(batch))
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    model.train(was_training)


def make_optimizer(groups: list[dict[str, Any]], params: dict[str, Any], device: torch.device):
    """AdamW over parameter groups (each group carries its own ``lr``); fused kernels on CUDA."""
    groups = [g for g in groups if any(p.requires_grad for p in g["params"])]
    for g in groups:
        g["params"] = [p for p in g["params"] if p.requires_grad]
    return torch.optim.AdamW(groups, weight_decay=params["weight_decay"], fused=device.type == "cuda")


def warmup_cosine(total_steps: int, warmup_share: float) -> Callable[[int], float]:
    warmup = max(int(total_steps * warmup_share), 0)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(total_steps - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def steps_per_epoch(n: int, batch_size: int, min_steps: int) -> int:
    """Full batches per pass; small label fractions get at least ``min_steps`` steps (cycling the data)."""
    return max(n // batch_size if n >= batch_size else 1, min_steps)


def planned_epochs(params: dict[str, Any], per_epoch: int) -> int:
    """Epochs to run: ``epochs``, or under a step budget (``budget_steps``, the suite's ``budget: {steps: N}``)
    as many epochs as make about that many optimizer steps: ``max(1, round(budget_steps / per_epoch))``."""
    steps = params.get("budget_steps")
    return max(1, round(int(steps) / per_epoch)) if steps else int(params["epochs"])


def fit(model: nn.Module, groups: list[dict[str, Any]], train: TensorData, val: TensorData, transform: Transform,
        params: dict[str, Any], device: torch.device, metric: str = "accuracy", clock_start: float | None = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        generator: torch.Generator | None = None, penalty: Callable[[], torch.Tensor] | None = None) -> FitResult:
    """Train ``model`` and keep the epoch with the best validation ``metric`` (weights restored at the end).

    Args:
        groups: AdamW parameter groups with their ``lr``; frozen parameters are left out.
        transform: per-batch preprocessing on the device (the backbone's), applied before ``model``.
        clock_start: ``time.perf_counter()`` at the start of the cell; curve ``time_s`` counts from it.
        penalty: an extra loss term added to every step's cross-entropy (e.g. L2-SP's distance to the pretrained
            weights); called with no arguments, returns a scalar tensor. ``train_loss`` in the curve includes it.

    Raises:
        FloatingPointError: the training loss became NaN or infinite (the cell is recorded as an error).
    """
    clock_start = time.perf_counter() if clock_start is None else clock_start
    batch = min(int(params["batch_size"]), len(train))
    per_epoch = steps_per_epoch(len(train), batch, int(params.get("min_steps_per_epoch", 10)))
    epochs = planned_epochs(params, per_epoch)
    optimizer = make_optimizer(groups, params, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(epochs * per_epoch, params["warmup"]))
    # torch.compile wraps the module; weights stay shared with ``model``, whose state_dict we checkpoint.
    net = torch.compile(model) if params.get("compile") and device.type == "cuda" else model
    precision = params.get("precision", "auto")
    result = FitResult()
    selection = ModelSelection(metric, params.get("patience"))
    order = torch.empty(0, dtype=torch.long)
    # Epoch 0: the skill before any training step ("higher start" is measured here, not after one epoch). It is
    # a point of the curve, not a candidate for model selection: the product of a trained strategy is trained.
    t1 = time.perf_counter()
    before = evaluate(model, val, transform, int(params["eval_batch_size"]), precision)
    result.eval_time_s += time.perf_counter() - t1
    result.curve.append({"epoch": 0, "val_accuracy": before.accuracy, "val_macro_f1": before.macro_f1,
                         "epoch_time_s": 0.0, "time_s": time.perf_counter() - clock_start})
    for epoch in range(1, epochs + 1):
        model.train()
        sync(device)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for _ in range(per_epoch):
            if len(order) < batch:  # a fresh permutation whenever the current one runs short
                order = torch.randperm(len(train), generator=generator)
            idx, order = order[:batch].to(device), order[batch:]
            inputs = transform(tuple(t[idx] for t in train.inputs))
            loss, hits = _train_step(net, optimizer, inputs, train.y[idx], params["label_smoothing"], device, precision,
                                     penalty)
            scheduler.step()
            loss_sum += loss
            correct += hits
        sync(device)
        epoch_time = time.perf_counter() - t0
        mean_loss = loss_sum.item() / per_epoch  # one host sync per epoch
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"training loss is {mean_loss} at epoch {epoch}; lower the learning rate")
        result.train_time_s += epoch_time
        result.samples_seen += per_epoch * batch
        if epoch == 1:
            result.first_epoch_time_s = epoch_time
        t1 = time.perf_counter()
        recalibrate_batchnorm(model, train, transform, int(params["eval_batch_size"]),
                              int(params.get("precise_bn") or 0), precision)
        val_scores = evaluate(model, val, transform, int(params["eval_batch_size"]), precision)
        result.eval_time_s += time.perf_counter() - t1
        point = {"epoch": epoch, "train_loss": mean_loss, "train_accuracy": correct.item() / (per_epoch * batch),
                 "val_accuracy": val_scores.accuracy, "val_macro_f1": val_scores.macro_f1,
                 "epoch_time_s": epoch_time, "time_s": time.perf_counter() - clock_start}
        result.curve.append(point)
        if on_epoch:
            on_epoch(point)
        if selection.stop_after(model, epoch, val_scores, result):
            break
    selection.restore(model)
    return result


class ModelSelection:
    """Keep the epoch with the best validation ``metric`` (its weights copied) and stop after ``patience`` epochs
    without gain (None: never). Shared by every training loop, so all strategies are selected the same way."""

    def __init__(self, metric: str, patience: int | None):
        self.metric, self.patience = metric, patience
        self.best_score, self.best_state, self.left = -1.0, None, patience

    def stop_after(self, model: nn.Module, epoch: int, scores: Scores, result: FitResult) -> bool:
        """Record epoch ``epoch``'s validation ``scores`` in ``result``; True when training should stop."""
        if scores.get(self.metric) > self.best_score:
            self.best_score, result.best_epoch, result.best_val = scores.get(self.metric), epoch, scores
            self.best_state = copy.deepcopy(model.state_dict())
            self.left = self.patience
            return False
        if self.left is None:
            return False
        self.left -= 1
        return self.left <= 0

    def restore(self, model: nn.Module) -> None:
        """Load the selected epoch's weights back into ``model``."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


def _train_step(model, optimizer, inputs, y, label_smoothing, device, precision="auto", penalty=None):
    with autocast(device, precision):
        logits = model(*inputs)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    if penalty is not None:  # outside autocast: a sum of squares over millions of weights wants fp32
        loss = loss + penalty()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), (logits.argmax(1) == y).sum()

