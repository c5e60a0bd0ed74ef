"""Feature extraction through the frozen backbone vs one epoch of head training on the cached features.

Feature-extraction pays the backbone's forward pass once per sample (then reads the on-disk cache); every epoch
after that only trains a linear head. The ratio in ``extra_info`` says how many head epochs one extraction costs.
"""

from __future__ import annotations

import time

import pytest

from bench.run import features as features_module
from bench.infra.cache import cache_dir
from bench.run.train import fit
from tests.benchmarks import BENCH_PARAMS, capture_training, mean_seconds

pytestmark = pytest.mark.benchmark(group="feature-extraction")

ROUNDS = 3


def head_epoch(ctx, run):
    """One pass over the training features (``len // batch`` steps) through the shared loop, as the strategy
    trains its head: the head, its AdamW group and the identity transform are the strategy's own."""
    params = ctx.params | {"epochs": 1, "min_steps_per_epoch": 1, "patience": None}
    return fit(run.model, run.groups, run.data["train"], run.data["val"], run.transform, params, ctx.device)


def forget_features(task: str) -> None:
    """Drop this task's cached features (memory and disk) so the next call computes them all again. Only the
    benchmark task's files are touched, in case the session cache is a user's warm one."""
    features_module._FEATURES.clear()
    for path in (cache_dir() / "features").glob(f"{task}-*"):
        path.unlink()


def test_feature_extraction_cold_cache(benchmark, bench_backbone):
    """``CellContext.features`` on a cache miss: build the frozen backbone, run it over the training images
    (train ∪ validation samples), store float16 features on disk."""
    ctx, run = capture_training("feature-extraction", bench_backbone, BENCH_PARAMS)
    make_model = lambda: ctx.backbone.feature_model(ctx.params)  # noqa: E731 - as the strategy passes it
    task = ctx.task.name

    feats = benchmark.pedantic(ctx.features, args=("train", make_model), setup=lambda: forget_features(task),
                               rounds=ROUNDS)

    images = len(ctx.splits.train) + len(ctx.splits.val)
    assert len(feats) == len(ctx.splits.train)
    # The denominator, timed with the same number of rounds (mean, like the benchmark's own figure).
    head_epoch(ctx, run)  # warm-up, as the dedicated head benchmark below does
    head_times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        head_epoch(ctx, run)
        head_times.append(time.perf_counter() - t0)
    head_s = sum(head_times) / len(head_times)
    seconds = mean_seconds(benchmark)
    benchmark.extra_info.update({
        "images": images, "image_size": ctx.params["image_size"], "feature_dim": int(feats.inputs[0].shape[1]),
        "device": ctx.device.type,
        "images_per_s": round(images / seconds, 1) if seconds else None,
        "head_epoch_s": round(head_s, 4),
        "extraction_over_head_epoch": round(seconds / head_s, 1) if seconds else None,
    })


def test_head_epoch_on_cached_features(benchmark, bench_backbone):
    """One epoch of the feature-extraction head on features already cached (what every later epoch costs)."""
    ctx, run = capture_training("feature-extraction", bench_backbone, BENCH_PARAMS)

    result = benchmark.pedantic(head_epoch, args=(ctx, run), rounds=ROUNDS, warmup_rounds=1)

    batch = int(ctx.params["batch_size"])
    assert result.samples_seen == len(run.data["train"]) // batch * batch
    seconds = mean_seconds(benchmark)
    benchmark.extra_info.update({
        "samples": result.samples_seen, "batch_size": batch, "device": ctx.device.type,
        "samples_per_s": round(result.samples_seen / seconds, 1) if seconds else None,
    })
