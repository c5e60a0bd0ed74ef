"""The CPU baseline CI compares against (baselines/ci-cpu.parquet, .ci/run): it matches the ci-cpu suite, passes
against itself and against wall times a noisy shared runner produces, and fails on a real accuracy drop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.gate import baseline, check
from bench.plan.suite import expand, load_suite

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "baselines" / "ci-cpu.parquet"


@pytest.fixture(scope="module")
def base():
    frame, _ = baseline.load_baseline(BASELINE)
    return frame


@pytest.fixture(scope="module")
def config():
    """The gate as .ci/run runs it: the suite's own check: settings, wall time not gated (--no-time)."""
    return check.make_config(load_suite("ci-cpu").check | {"time_metric": None})


def test_the_baseline_holds_every_cell_of_the_ci_suite(base):
    """Cell keys pin the suite and the plugins' versions: a change to either needs a refreshed baseline
    (README / docs/CHECK.md: `transferbench baseline save ... --force`)."""
    assert set(base["cell"]) == {c.key for c in expand(load_suite("ci-cpu"))}
    assert (base["status"] == "ok").all()


def test_the_baseline_passes_against_itself(base, config):
    assert check.compare(base.copy(), base, config).exit_code == 0


def test_slower_neighbours_do_not_fail_the_gate(base, config):
    noisy = base.copy()
    noisy["wall_time_s"] = noisy["wall_time_s"] * np.random.default_rng(0).uniform(1.5, 3.0, len(noisy))
    assert check.compare(noisy, base, config).exit_code == 0


@pytest.mark.parametrize("task,strategy", [("digits", "full-fine-tune"), ("rotten-tomatoes", "from-scratch")])
def test_a_real_accuracy_drop_fails_the_gate(base, config, task, strategy):
    degraded = base.copy()
    group = (degraded["task"] == task) & (degraded["strategy"] == strategy)
    degraded.loc[group, "accuracy"] -= 0.08  # eight points on every seed: what a broken training loop looks like
    result = check.compare(degraded, base, config)
    assert result.exit_code == 1
    assert [(c.key[0], c.key[2]) for c in result.regressions] == [(task, strategy)]


def test_seed_noise_within_the_tolerance_passes(base, config):
    jittered = base.copy()
    ok = jittered["status"] == "ok"
    jittered.loc[ok, "accuracy"] += np.random.default_rng(1).normal(0, 0.004, ok.sum())
    assert check.compare(jittered, base, config).exit_code == 0
