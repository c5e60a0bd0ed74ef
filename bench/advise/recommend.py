"""From the final rows to the answer: the best configuration on validation, the cheapest one within noise of it,
and their held-out test scores.

Selection reads validation only (per-seed ``val_<main metric>`` of the final rows, or per-example validation
predictions where ``bench.results.predictions`` has them); the test scores are read once, to report the chosen
configurations, and never change which ones are chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from bench.results import uncertainty
from bench.results.predictions import read_predictions
from bench.results.seedstats import Interval, welch_difference

__all__ = ["Candidate", "Noise", "Recommendation", "answer_text", "recommend", "test_interval", "within_noise"]

Z95 = 1.959963984540054


@dataclass
class Candidate:
    """One configuration that reached the finals, with its ``ok`` final rows (one per seed)."""

    backbone: str
    strategy: str
    params: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    results_dir: Path | None = None  # where the rows' per-example predictions are (bench.results.predictions)

    @property
    def metric(self) -> str:
        return self.rows[0].get("main_metric", "accuracy") if self.rows else "accuracy"

    def val(self) -> list[float]:
        return [float(r[f"val_{self.metric}"]) for r in self.rows if r.get(f"val_{self.metric}") is not None]

    def test(self) -> list[float]:
        return [float(r[self.metric]) for r in self.rows if r.get(self.metric) is not None]

    @property
    def cost_s(self) -> float:
        """Mean wall time of one cell: what the configuration costs to run once."""
        return float(np.mean([r["wall_time_s"] for r in self.rows])) if self.rows else math.inf

    @property
    def label(self) -> str:
        lr = f" (lr {self.params['lr']:g})" if "lr" in self.params else ""
        return f"{self.strategy} on {self.backbone}{lr}"


@dataclass(frozen=True)
class Noise:
    """Is ``other`` within noise of ``best`` on validation? With the difference and how it was judged."""

    within: bool
    diff: float  # best - other, validation main metric
    low: float
    high: float
    method: str


def within_noise(best: Candidate, other: Candidate, results_dir: str | Path | None = None) -> Noise:
    """Whether ``other``'s validation score is within noise of ``best``'s (the 95 % interval of ``best - other``
    reaches 0).

    Three ways, the first that applies: paired per-example validation predictions of the two configurations on
    the same seeds (a paired t interval on per-example correctness: each seed's validation split is the same set
    of examples for every configuration); a Welch interval over the seeds' validation scores
    (``bench.results.seedstats``); with a single seed, the binomial standard error of two accuracies measured on
    ``n_val`` examples.
    """
    diffs = _paired_val_differences(best, other, results_dir) if results_dir is not None else None
    if diffs is not None and len(diffs) >= 2:
        mean = float(diffs.mean())
        if np.all(diffs == diffs[0]):
            return Noise(bool(mean <= 0), mean, mean, mean, "paired validation predictions")
        low, high = stats.ttest_1samp(diffs, 0.0).confidence_interval(0.95)
        return Noise(bool(low <= 0), mean, float(low), float(high), "paired validation predictions")
    a, b = best.val(), other.val()
    welch = welch_difference(a, b)
    if math.isfinite(welch.low):
        method = f"Welch over seeds (n={len(a)}, {len(b)})"
        return Noise(bool(welch.low <= 0), welch.diff, welch.low, welch.high, method)
    n = min(int(r.get("n_val") or 0) for r in best.rows + other.rows) if best.rows and other.rows else 0
    if n == 0 or not a or not b:
        return Noise(False, math.nan, math.nan, math.nan, "no validation scores")
    pa, pb = float(np.mean(a)), float(np.mean(b))
    half = Z95 * math.sqrt(max(pa * (1 - pa), 1e-12) / n + max(pb * (1 - pb), 1e-12) / n)
    diff = pa - pb
    return Noise(bool(diff - half <= 0), diff, diff - half, diff + half, f"binomial error on {n} validation examples")


def _paired_val_differences(best: Candidate, other: Candidate, results_dir: str | Path) -> np.ndarray | None:
    by_seed = {r["seed"]: r for r in other.rows}
    parts = []
    for row in best.rows:
        twin = by_seed.get(row["seed"])
        mine = read_predictions(results_dir, row["cell"]) if twin else None
        theirs = read_predictions(results_dir, twin["cell"]) if mine else None
        if mine is None or theirs is None or mine.val is None or theirs.val is None:
            return None
        common, ia, ib = np.intersect1d(mine.val.ids, theirs.val.ids, return_indices=True)
        if not len(common):
            return None
        parts.append(mine.val.correct[ia].astype(float) - theirs.val.correct[ib].astype(float))
    return np.concatenate(parts) if parts else None


def test_interval(candidate: Candidate) -> Interval:
    """The held-out test main metric over seeds with its 95 % interval from ``bench.results.uncertainty``: a
    bootstrap over seeds and the stored per-example test predictions (so a configuration that is the same on
    every seed still shows its test-set noise), or the binomial model on ``n_test`` where no predictions were
    kept. Percentile bounds: always inside [0, 1]."""
    rows = [r for r in candidate.rows if r.get(candidate.metric) is not None]
    found = ([read_predictions(candidate.results_dir, r["cell"]) for r in rows]
             if candidate.results_dir is not None else [])
    preds = [p.test for p in found] if found and all(p is not None for p in found) else None
    n_test = next((int(r["n_test"]) for r in rows if r.get("n_test")), None)
    cells = uncertainty.StrategyCells(np.asarray([float(r[candidate.metric]) for r in rows]), n_test, preds)
    est = uncertainty.estimate(cells, candidate.metric, key=("advise", candidate.label))
    return Interval(est.mean, est.low, est.high, est.n_seeds, math.nan)


@dataclass
class Recommendation:
    best: Candidate
    cheapest: Candidate  # the cheapest candidate within noise of ``best`` (``best`` itself when none is cheaper)
    noise: dict[str, Noise]  # candidate label -> its comparison with ``best``
    ranked: list[Candidate]


def recommend(candidates: list[Candidate], results_dir: str | Path | None = None) -> Recommendation | None:
    """The best candidate by mean validation score (ties: the cheaper), and the cheapest one within noise of it."""
    scored = [c for c in candidates if c.val()]
    if not scored:
        return None
    ranked = sorted(scored, key=lambda c: (-float(np.mean(c.val())), c.cost_s))
    best = ranked[0]
    noise = {c.label: within_noise(best, c, results_dir) for c in ranked[1:]}
    close = [best] + [c for c in ranked[1:] if noise[c.label].within]
    return Recommendation(best, min(close, key=lambda c: c.cost_s), noise, ranked)


def answer_text(rec: Recommendation) -> str:
    """The short answer: the best configuration with its held-out score, and the cheapest one within noise."""
    best = test_interval(rec.best)
    metric = rec.best.metric.replace("_", "-")
    ci = f" [{best.low:.2f}, {best.high:.2f}]" if math.isfinite(best.low) else ""
    seeds = f"{best.n} seed{'s' if best.n != 1 else ''}"
    text = f"use {rec.best.label}: {metric} {best.mean:.2f}{ci} on held-out data ({seeds})"
    if rec.cheapest is rec.best:
        cheaper = [c for c in rec.ranked if c.cost_s < rec.best.cost_s]
        if cheaper:
            other = cheaper[0]
            gap = (best.mean - test_interval(other).mean) * 100
            side = "behind" if gap >= 0 else "ahead"
            text += (f"; the cheaper {other.label} is not within noise on validation ({abs(gap):.1f} points {side} "
                     "on held-out data)")
        else:
            text += "; it is also the cheapest configuration tried"
        return text
    cheap = test_interval(rec.cheapest)
    gap = (best.mean - cheap.mean) * 100
    ratio = rec.cheapest.cost_s / rec.best.cost_s if rec.best.cost_s > 0 else math.nan
    word = "lower" if gap >= 0 else "higher"
    return text + (f"; {rec.cheapest.label} is within noise on validation and {abs(gap):.1f} points {word} on "
                   f"held-out data at {_ratio(ratio)} the cost")


def _ratio(ratio: float) -> str:
    if not math.isfinite(ratio):
        return "an unknown share of"
    if ratio < 1:
        return f"1/{1 / ratio:.0f} of" if ratio <= 0.5 else f"{ratio:.0%} of"
    return f"{ratio:.1f}x"
