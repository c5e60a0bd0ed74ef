"""Feature extraction through the frozen backbone vs solving the linear probe on the cached features.

Feature-extraction pays the backbone's forward pass once per sample (then reads the on-disk cache); after that
it only solves the convex probe (bench.run.probe). The ratio in ``extra_info`` says how many probe solves one
extraction costs.
"""

from __future__ import annotations

import time

import pytest

from bench.infra.cache import cache_dir
from bench.run import features as features_module
from bench.run.probe import DEFAULT_L2_GRID, solve_probe
from tests.benchmarks import BENCH_PARAMS, make_context, mean_seconds

pytestmark = pytest.mark.benchmark(group="feature-extraction")

ROUNDS = 3


def probe_solve(ctx, feats):
    """The strategy's probe on cached features: the default L2 grid, chosen on validation."""
    return solve_probe(feats["train"].inputs[0], feats["train"].y, feats["val"].inputs[0], feats["val"].y,
                       ctx.meta.num_classes, metric=ctx.meta.main_metric)


def cached_features(ctx, make_model):
    return {which: ctx.features(which, make_model) for which in ("train", "val")}


def forget_features(task: str) -> None:
    """Drop this task's cached features (memory and disk) so the next call computes them all again. Only the
    benchmark task's files are touched, in case the session cache is a user's warm one."""
    features_module._FEATURES.clear()
    for path in (cache_dir() / "features").glob(f"{task}-*"):
        path.unlink()


def test_feature_extraction_cold_cache(benchmark, bench_backbone):
    """``CellContext.features`` on a cache miss: build the frozen backbone, run it over the training images
    (train ∪ validation samples), store float16 features on disk."""
    _, ctx = make_context("feature-extraction", bench_backbone, BENCH_PARAMS)
    make_model = lambda: ctx.backbone.feature_model(ctx.params)  # noqa: E731 - as the strategy passes it
    task = ctx.task.name

    feats = benchmark.pedantic(ctx.features, args=("train", make_model), setup=lambda: forget_features(task),
                               rounds=ROUNDS)

    images = len(ctx.splits.train) + len(ctx.splits.val)
    assert len(feats) == len(ctx.splits.train)
    # The denominator, timed with the same number of rounds (mean, like the benchmark's own figure).
    split_feats = cached_features(ctx, make_model)
    probe_solve(ctx, split_feats)  # warm-up, as the dedicated probe benchmark below does
    probe_times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        probe_solve(ctx, split_feats)
        probe_times.append(time.perf_counter() - t0)
    probe_s = sum(probe_times) / len(probe_times)
    seconds = mean_seconds(benchmark)
    benchmark.extra_info.update({
        "images": images, "image_size": ctx.params["image_size"], "feature_dim": int(feats.inputs[0].shape[1]),
        "device": ctx.device.type,
        "images_per_s": round(images / seconds, 1) if seconds else None,
        "probe_solve_s": round(probe_s, 4),
        "extraction_over_probe_solve": round(seconds / probe_s, 1) if seconds else None,
    })


def test_probe_solve_on_cached_features(benchmark, bench_backbone):
    """The feature-extraction probe (full default L2 grid) on features already cached: the whole training cost."""
    _, ctx = make_context("feature-extraction", bench_backbone, BENCH_PARAMS)
    feats = cached_features(ctx, lambda: ctx.backbone.feature_model(ctx.params))

    result = benchmark.pedantic(probe_solve, args=(ctx, feats), rounds=ROUNDS, warmup_rounds=1)

    assert len(result.curve) == len(DEFAULT_L2_GRID)
    benchmark.extra_info.update({
        "samples": len(feats["train"]), "feature_dim": int(feats["train"].inputs[0].shape[1]),
        "device": ctx.device.type, "iterations": result.iterations, "chosen_l2": result.l2,
        "converged": result.converged,
    })
