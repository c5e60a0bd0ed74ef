"""Intervals and tests that include the test set: a hierarchical bootstrap over seeds and test examples.

A reported score varies for two reasons: the training run (seed) and the finite test set. Seed statistics alone
(``seedstats``) miss the second, so a strategy that is deterministic across seeds gets a zero-width band although
its score on 500 test examples carries about ±4 points of binomial noise, and a t-interval on two seeds is ±12.7
standard deviations wide and unbounded. Here both sources are resampled (the stratified / hierarchical bootstrap of
rliable, Agarwal et al. 2021):

- **With per-example predictions** (``bench.results.predictions``) of every seed: each of ``B`` resamples draws
  the test examples with replacement (one draw shared by every strategy of a group, which pairs them on the same
  examples) and, when there are two or more seeds, the seeds of each strategy with replacement; the score is
  recomputed on the resample (accuracy, or macro-F1 from its confusion counts) and averaged over the drawn seeds.
  With one seed only the test examples are resampled; the interval says so (``Estimate.method``).
- **Without predictions** (results recorded before predictions were kept): a parametric version of the same two
  stages: draw seeds with replacement, then the test sampling as ``Binomial(n_test, seed mean) / n_test``. It
  treats macro-F1 like a proportion, and differences are unpaired (nothing says which examples each got right).
  Without ``n_test`` either, only seeds are resampled.

Intervals are percentile intervals of the resampled means, so they stay inside the metric's range [0, 1] by
construction; they are widened to the point estimate in the rare degenerate case that they miss it. Differences
between two strategies of a group come from the same joint resamples: ``p`` is the two-sided bootstrap p-value
(twice the share of resampled differences on the far side of zero, +1 smoothed), the smallest level at which the
percentile interval of the difference excludes zero. Every resampling draws from a generator seeded by the caller's
key, so the same results give the same numbers.

Vectorised (``bench.results.resampling``): examples with the same outcome pattern (their label and every cell's
prediction) are exchangeable, so the examples' resample is one multinomial over the distinct patterns instead of
``B × n_test`` indices.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.results.predictions import SplitPredictions
from bench.results import resampling
from bench.results.seedstats import holm

CONFIDENCE = 0.95
RESAMPLES = 2000  # B: enough for stable 2.5 / 97.5 % percentiles and p-values down to 0.001
METRICS = ("accuracy", "macro_f1")

# Estimate.method values (shown next to every interval)
SEEDS_AND_TEST = "seeds × test examples"
TEST_ONLY = "test examples only (1 seed)"
BINOMIAL = "seeds × binomial test model (no predictions)"
BINOMIAL_ONE_SEED = "binomial test model, 1 seed (no predictions)"
SEEDS_ONLY = "seeds only (no predictions, n_test unknown)"


@dataclass(frozen=True)
class StrategyCells:
    """One strategy's finished cells in one group: the recorded metric per seed, the test size, and the
    per-seed test predictions where every seed has them (else None)."""

    values: np.ndarray
    n_test: int | None = None
    predictions: list[SplitPredictions] | None = None

    @property
    def seeds(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with its bootstrap interval; ``n_test`` is the number of test examples (0: unknown)."""

    mean: float
    low: float
    high: float
    n_seeds: int
    n_test: int
    method: str

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low)

    def n_label(self) -> str:
        """``3 seeds × 500 test`` — what the interval is over."""
        seeds = f"{self.n_seeds} seed" + ("" if self.n_seeds == 1 else "s")
        return f"{seeds} × {self.n_test} test" if self.n_test else seeds


@dataclass(frozen=True)
class Difference:
    """``a − b`` from joint resamples: percentile interval, two-sided p, and P(a beats b)."""

    diff: float
    low: float
    high: float
    p: float
    p_beats: float  # share of resamples where a > b (ties count half)
    paired: bool


@dataclass(frozen=True)
class Comparison:
    """Joint bootstrap of the strategies of one group: ``samples[s]`` is strategy s's mean on each resample."""

    means: dict[str, float]
    samples: dict[str, np.ndarray] = field(repr=False)
    estimates: dict[str, Estimate]
    paired: bool
    confidence: float = CONFIDENCE

    def difference(self, a: str, b: str) -> Difference:
        """``a − b`` with its interval and two-sided p-value."""
        diff = self.means[a] - self.means[b]
        d = self.samples[a] - self.samples[b]
        if not (self.estimates[a].has_interval and self.estimates[b].has_interval):  # one seed, nothing else known
            return Difference(diff, math.nan, math.nan, math.nan, _beats(d), self.paired)
        low, high = _percentiles(d, self.confidence)
        return Difference(diff, min(low, diff), max(high, diff), _two_sided_p(d), _beats(d), self.paired)

    def p_value(self, a: str, b: str) -> float:
        """Two-sided p of "a and b score the same" (NaN when one of them has no interval)."""
        if not (self.estimates[a].has_interval and self.estimates[b].has_interval):
            return math.nan
        return _two_sided_p(self.samples[a] - self.samples[b])

    def versus_best(self, order: Sequence[str]) -> tuple[list[Difference | None], list[float]]:
        """Each strategy of ``order`` (best first) against the first, and the Holm-adjusted p of each gap.

        Holm runs over *every pair* of strategies of the group, not only the gaps to the best: the best was
        picked after looking at the data, and under pure noise the gap between the luckiest and the unluckiest
        of k strategies is a range, which a family of k − 1 "versus the best" tests would call significant too
        often. Over all pairs the family-wise error stays at the level whatever was picked (Holm holds under
        any dependence). None / NaN for the best itself.
        """
        pairs = [(a, b) for i, a in enumerate(order) for b in order[i + 1:]]
        adjusted = dict(zip(pairs, holm([self.p_value(a, b) for a, b in pairs])))
        diffs = [None] + [self.difference(s, order[0]) for s in order[1:]]
        return diffs, [math.nan] + [adjusted[(order[0], s)] for s in order[1:]]

    def beat_matrix(self) -> dict[tuple[str, str], float]:
        """``{(a, b): P(a beats b)}`` over every ordered pair of strategies."""
        return {(a, b): _beats(self.samples[a] - self.samples[b]) for a in self.samples for b in self.samples
                if a != b}


def rng_for(*key: object) -> np.random.Generator:
    """A generator seeded by a stable hash of ``key`` (e.g. task, backbone, fraction), not by call order."""
    canonical = "|".join(repr(float(k)) if isinstance(k, (int, float, np.number)) else str(k) for k in key)
    return np.random.default_rng(zlib.crc32(canonical.encode()))


# --- the public entry points -------------------------------------------------------------------------------------


def estimate(cells: StrategyCells, metric: str = "accuracy", key: object = (), resamples: int = RESAMPLES,
             confidence: float = CONFIDENCE) -> Estimate:
    """Mean of one strategy over its seeds with a bootstrap interval (see the module docstring).

    Args:
        cells: the strategy's finished cells (NaN values must already be dropped).
        metric: ``accuracy`` or ``macro_f1``.
        key: seeds the resampling (same key, same interval).
        resamples: B.
        confidence: two-sided coverage.

    Returns:
        An ``Estimate``; NaN bounds only when nothing can be resampled (one seed, no predictions, no ``n_test``).
    """
    if not cells.seeds:
        return Estimate(math.nan, math.nan, math.nan, 0, int(cells.n_test or 0), "")
    return compare({"_": cells}, metric, key, resamples, confidence).estimates["_"]


def compare(strategies: Mapping[str, StrategyCells], metric: str = "accuracy", key: object = (),
            resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> Comparison:
    """Joint bootstrap of the strategies of one group (same task, backbone and label fraction).

    Paired on test examples when every strategy has predictions on a common set of test ids; otherwise every
    strategy falls back to the parametric model and differences are unpaired.
    """
    return compare_metrics({metric: strategies}, key, resamples, confidence)[metric]


def compare_metrics(by_metric: Mapping[str, Mapping[str, StrategyCells]], key: object = (),
                    resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> dict[str, Comparison]:
    """``compare`` for several metrics of one group (``{metric: {strategy: cells}}``), on the same resamples:
    where every metric has the same cells with predictions, the test examples and seeds are drawn once (half
    the cost for accuracy and macro-F1 together, and intervals that agree on what was resampled)."""
    rng = rng_for(*key) if isinstance(key, tuple) else rng_for(key)
    # sorted: the draws must not depend on the order the caller found the strategies in
    chosen = {m: {s: cells[s] for s in sorted(cells) if cells[s].seeds} for m, cells in by_metric.items()}
    aligned = {m: _aligned(strategies) for m, strategies in chosen.items()}
    first = next(iter(aligned.values()), None)
    base = next(iter(chosen.values()), {})
    shared = first is not None and all(aligned[m] is not None and chosen[m].keys() == base.keys() and all(
        len(chosen[m][s].predictions) == len(base[s].predictions)
        and all(x is y for x, y in zip(chosen[m][s].predictions, base[s].predictions)) for s in base)
        for m in chosen)
    if shared:
        joint = _resample_predictions(first, list(chosen), rng, resamples)
        return {m: _comparison(chosen[m], *joint[m], True, rng, resamples, confidence) for m in chosen}
    out = {}
    for m, strategies in chosen.items():  # a generator per metric: its numbers do not depend on the others
        own = rng_for(*key, m) if isinstance(key, tuple) else rng_for(key, m)
        if aligned[m] is not None:
            out[m] = _comparison(strategies, *_resample_predictions(aligned[m], [m], own, resamples)[m], True, own,
                                 resamples, confidence)
        else:
            out[m] = _comparison(strategies, {}, {}, 0, False, own, resamples, confidence)
    return out


def _comparison(strategies: Mapping[str, StrategyCells], means: dict[str, float], samples: dict[str, np.ndarray],
                n_test: int, paired: bool, rng: np.random.Generator, resamples: int, confidence: float
                ) -> Comparison:
    """Estimates from the resampled means (``paired``), or from the parametric fallback drawn here."""
    if paired:
        methods = {s: SEEDS_AND_TEST if strategies[s].seeds > 1 else TEST_ONLY for s in strategies}
        tests = dict.fromkeys(strategies, n_test)
    else:
        means, samples, methods = {}, {}, {}
        tests = {s: int(c.n_test) if c.n_test else 0 for s, c in strategies.items()}
        for s, c in strategies.items():
            means[s] = float(np.mean(c.values))
            samples[s], methods[s] = _resample_values(c.values, tests[s], rng, resamples)
    estimates = {}
    for s, c in strategies.items():
        low, high = _percentiles(samples[s], confidence)
        if methods[s] == SEEDS_ONLY and c.seeds < 2:
            low = high = math.nan
        else:  # a percentile bound can miss the estimate only when the resamples are degenerate
            low, high = min(low, means[s]), max(high, means[s])
        estimates[s] = Estimate(means[s], low, high, c.seeds, tests[s], methods[s])
    return Comparison(means, samples, estimates, paired, confidence)


# --- resampling ---------------------------------------------------------------------------------------------------


def _aligned(strategies: Mapping[str, StrategyCells]) -> dict[str, list[SplitPredictions]] | None:
    """Every strategy's per-seed predictions restricted to the test ids all of them share, in one order; None
    when a strategy lacks predictions or nothing is shared."""
    if not strategies or any(not c.predictions or len(c.predictions) != c.seeds for c in strategies.values()):
        return None
    common = None
    for cells in strategies.values():
        for p in cells.predictions:
            common = np.asarray(p.ids) if common is None else np.intersect1d(common, p.ids)
    if common is None or not len(common):
        return None
    common = np.unique(common)
    out = {}
    for s, cells in strategies.items():
        seeds = []
        for p in cells.predictions:
            ids = np.asarray(p.ids)
            order = np.argsort(ids, kind="stable")
            at = order[np.searchsorted(ids, common, sorter=order)]
            seeds.append(SplitPredictions(ids[at], np.asarray(p.y)[at], np.asarray(p.pred)[at],
                                          np.asarray(p.proba)[at]))
        out[s] = seeds
    return out


def _resample_predictions(aligned: dict[str, list[SplitPredictions]], metrics: list[str],
                          rng: np.random.Generator, resamples: int
                          ) -> dict[str, tuple[dict[str, float], dict[str, np.ndarray], int]]:
    """Per metric: point means and per-resample means of every strategy, and n_test; the test examples drawn
    once for all strategies and metrics, the seeds once per strategy."""
    names = list(aligned)
    cells = [p for s in names for p in aligned[s]]  # every (strategy, seed) cell, strategy-major
    y = cells[0].y
    n = len(y)
    # patterns of (label, every cell's prediction) whatever the metrics asked, so the draws, and so accuracy's
    # interval, are the same whether macro-F1 is computed alongside (report) or not (summary)
    patterns, counts, inverse = resampling.patterns(np.vstack([y] + [c.pred for c in cells]).T)
    hits = (patterns[:, 1:] == patterns[:, :1]).astype(np.float32)
    draws = resampling.draw_counts(counts, inverse, rng, resamples)  # resample × pattern
    original = counts[None, :].astype(np.float64)
    sizes = [len(aligned[s]) for s in names]
    weights = [resampling.seed_weights(r, rng, resamples) for r in sizes]  # the same seed draws for every metric
    out = {}
    for metric in metrics:
        if metric == "macro_f1":
            per_cell = resampling.macro_f1(draws, patterns[:, 0], patterns[:, 1:])
            point = resampling.macro_f1(original, patterns[:, 0], patterns[:, 1:])[0]
        else:
            per_cell = draws @ hits / n  # resample × cell
            point = (original @ hits / n)[0]
        means, samples, at = {}, {}, 0
        for s, r, w in zip(names, sizes, weights):
            block, at = per_cell[:, at:at + r], at + r
            means[s] = float(point[at - r:at].mean())
            samples[s] = block[:, 0] if w is None else (w * block).sum(axis=1) / r
        out[metric] = (means, samples, n)
    return out


def _resample_values(values: np.ndarray, n_test: int, rng: np.random.Generator, resamples: int
                     ) -> tuple[np.ndarray, str]:
    """The parametric fallback: seeds with replacement, then Binomial(n_test, seed mean) / n_test."""
    values = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
    r = len(values)
    means = (resampling.seed_mean(np.broadcast_to(values, (resamples, r)), rng) if r > 1
             else np.full(resamples, values[0]))
    if not n_test:
        return means, SEEDS_ONLY
    return rng.binomial(n_test, means) / n_test, BINOMIAL if r > 1 else BINOMIAL_ONE_SEED


# --- summaries of resamples ---------------------------------------------------------------------------------------


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if not samples.size:
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _two_sided_p(d: np.ndarray) -> float:
    """Twice the smaller tail share around zero, +1 smoothed (a bootstrap p-value is never exactly 0)."""
    d = d[np.isfinite(d)]
    if not d.size:
        return math.nan
    below, above = int((d <= 0).sum()), int((d >= 0).sum())
    return float(min(1.0, 2 * (min(below, above) + 1) / (d.size + 1)))


def _beats(d: np.ndarray) -> float:
    d = d[np.isfinite(d)]
    return float(((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size) if d.size else math.nan


def tied_for_best(order: Sequence[str], significant: Sequence[bool | None]) -> list[str]:
    """The best and every strategy whose gap to it is not significant (``significant[i]`` for ``order[i]``)."""
    return [s for i, (s, sig) in enumerate(zip(order, significant)) if i == 0 or not sig]
