"""pytest-benchmark speed figures (marker ``benchmark``, deselected by default); see docs/BENCHMARKS.md.

Run: ``pytest -m benchmark tests/benchmarks``. The helpers here build cells the way ``bench.run.cell.run_cell`` does
and let a strategy's own ``run`` decide the model and its trainable parameters, so the timed code is the real
shared loop with exactly what each strategy would train; a new strategy is benchmarked with no new code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from torch import nn

from bench.plan import registry
from bench.backbones import resolve_backbone
from bench.core.context import Outcome
from bench.run.context import RunContext
from bench.run.taskdata import load_task_data
from bench.plan.suite import expand, parse_suite
from bench.run.train import TensorData, Transform
from bench.core.strategy import Strategy
from bench.core.task import Split, TaskData
from tests.helpers.tiny import TinyShapes, shapes_images

# Small on purpose: each benchmark takes seconds on a 2-core CPU. 32 px keeps the tiny timm model's convolutions
# from being pure call overhead (16 px is TinyShapes' native size; the backbone's transform upsamples).
BENCH_PARAMS: dict[str, Any] = {"image_size": 32, "batch_size": 32, "eval_batch_size": 128, "val_size": 64,
                                "epochs": 1}


class BenchShapes(TinyShapes):
    """TinyShapes at benchmark size: 1000 training and 200 test images (16 px grey, 3 classes)."""

    metadata = replace(TinyShapes.metadata, name="bench-shapes",
                       description="generated 16x16 shapes, 3 classes, 1000 train images (benchmarks only)")

    def load(self, path: Path | None = None) -> TaskData:
        tx, ty = shapes_images(1000, seed=1)
        vx, vy = shapes_images(200, seed=2)
        return TaskData(Split(tx, ty), Split(vx, vy), "generated")


@dataclass
class Training:
    """What a strategy hands to the shared loop: the model, its AdamW groups, the per-batch transform, the data."""

    model: nn.Module
    groups: list[dict[str, Any]]
    transform: Transform
    data: dict[str, TensorData]
    penalty: Callable[[], torch.Tensor] | None = None  # an extra loss term (l2-sp's pull to the start point)


class CapturingContext(RunContext):
    """A cell context that records what the strategy would train instead of training it.

    Everything before the training call runs for real (model creation, freezing, feature extraction for
    feature-extraction), so the captured model and groups are exactly the strategy's.
    """

    training: Training | None = None

    def train_and_test(self, model, groups, transform=None, data=None, penalty=None) -> Outcome:
        given = data or {}  # as CellContext.train_and_test: data replaces some of train/val, test is the cell's
        data = {w: given[w] if given.get(w) is not None else self.split(w) for w in ("train", "val", "test")}
        self.training = Training(model, groups, transform or self.transform, data, penalty)
        return Outcome(accuracy=0.0, macro_f1=0.0, val_accuracy=0.0)

    def test_only(self, model: nn.Module, transform=None) -> Outcome:
        return Outcome(accuracy=0.0, macro_f1=0.0, val_accuracy=0.0)


def make_context(strategy_name: str, backbone_name: str, params: dict[str, Any], task: str = "bench-shapes",
                 context: type[RunContext] = RunContext) -> tuple[Strategy, RunContext]:
    """The strategy and a context for one cell (seed 0, all labels), built as ``run_cell`` builds them.

    Parameters are merged exactly as for a suite (shared defaults < strategy < backbone < ``params``).
    Skips the test when the strategy declares it cannot run on the task/backbone.
    """
    # A strategy that learns from a second task gets the cell's own task as its source (same classes, offline).
    needs_source = "source" in getattr(registry.get("strategy", strategy_name), "needs", ())
    suite = parse_suite({"tasks": [task], "backbones": [backbone_name], "strategies": [strategy_name],
                         "params": params, "fractions": [1.0], "seeds": [0],
                         "strategy_params": {strategy_name: {"source": task}} if needs_source else {}})
    (cell,) = expand(suite)
    task_plugin = registry.get("task", cell.task)
    strategy = registry.get("strategy", cell.strategy)
    backbone = resolve_backbone(cell.backbone)
    reason = strategy.skip_reason(task_plugin.metadata, backbone)
    if reason:
        pytest.skip(reason)
    torch.manual_seed(cell.seed)
    ctx = context(task_plugin, load_task_data(cell.task), backbone, dict(cell.params), cell.seed, cell.fraction,
                  device())
    return strategy, ctx


def capture_training(strategy_name: str, backbone_name: str, params: dict[str, Any]) \
        -> tuple[CapturingContext, Training]:
    """Run the strategy up to its training call and return what it would train (skips strategies that don't)."""
    strategy, ctx = make_context(strategy_name, backbone_name, params, context=CapturingContext)
    strategy.run(ctx)
    if ctx.training is None:
        pytest.skip(f"{strategy_name}: does not train through the shared loop (a solved probe, a joint loop, or no "
                    "training)")
    return ctx, ctx.training


def device() -> torch.device:
    """CUDA when present (the loop then syncs before reading its clocks), else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def mean_seconds(benchmark) -> float | None:
    """Mean seconds per round of a finished benchmark; None under ``--benchmark-disable`` (no timing kept)."""
    return benchmark.stats.stats.mean if benchmark.stats else None
