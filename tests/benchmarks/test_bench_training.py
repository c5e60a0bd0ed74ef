"""Training-step throughput per strategy: a fixed number of steps through the shared loop (``bench.run.train.fit``).

Each strategy's own ``run`` builds the model and decides what trains (from-scratch: every parameter at random init;
partial-freeze: stem + first stages frozen with timm's ``freeze``; full-fine-tune: head/body learning-rate groups),
and the benchmark times ``fit`` on exactly that. Strategies that never use the shared loop are skipped with their
reason: zero-shot, and feature-extraction (its L-BFGS probe is timed in test_bench_features).
"""

from __future__ import annotations

import pytest
import torch

from bench.plan import registry
from bench.run.kit import count_params
from bench.run.train import fit
from tests.benchmarks import BENCH_PARAMS, capture_training, mean_seconds

pytestmark = pytest.mark.benchmark(group="training-steps")

STEPS = 12  # optimizer steps per timed round: one epoch of exactly STEPS full batches


@pytest.mark.parametrize("strategy", sorted(registry.plugins("strategy")))
def test_training_steps(benchmark, bench_backbone, strategy):
    ctx, run = capture_training(strategy, bench_backbone, BENCH_PARAMS)
    batch = int(ctx.params["batch_size"])
    # fit runs max(len(train) // batch, min_steps_per_epoch) steps an epoch: STEPS batches of data give STEPS.
    train = run.data["train"].take(torch.arange(STEPS * batch))
    params = ctx.params | {"epochs": 1, "min_steps_per_epoch": STEPS, "patience": None}

    def steps():
        # A round is what fit does for one epoch: the steps, then one validation pass (64 samples) and a
        # state_dict copy for model selection. The loop's own clock (``train_time_s``) covers the steps only.
        return fit(run.model, run.groups, train, run.data["val"], run.transform, params, ctx.device,
                   generator=torch.Generator().manual_seed(0), penalty=run.penalty)

    result = benchmark.pedantic(steps, rounds=3, warmup_rounds=1)

    # one trained epoch (the curve's epoch-0 point is the score before training)
    assert result.samples_seen == STEPS * batch and [p["epoch"] for p in result.curve if p["epoch"] != 0] == [1]
    trainable, total = count_params(run.model)
    seconds = mean_seconds(benchmark)
    benchmark.extra_info.update({
        "strategy": strategy, "steps": STEPS, "batch_size": batch, "image_size": ctx.params["image_size"],
        "device": ctx.device.type, "trainable_params": trainable, "total_params": total,
        # end to end per round (steps + validation + checkpoint), from the benchmark's mean round time
        "samples_per_s": round(result.samples_seen / seconds, 1) if seconds else None,
        # the training steps alone, as the loop measures them (the `throughput` results column), last round
        "loop_samples_per_s": round(result.throughput, 1),
    })
