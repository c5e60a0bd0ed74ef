"""Numbers with uncertainty: confidence intervals over seeds, learning-curve metrics, the negative-transfer test.

The one seed-statistics module: the report and the regression gate both use it. Everything here works on plain
sequences of floats, so the gate can use it without pandas gymnastics. Conventions:

- The report's intervals and tests of test scores live in ``bench.results.uncertainty`` (a bootstrap over seeds
  *and* test examples, bounded to the metric's range); this module stays for seed-only questions: the gate's
  Welch test, the transfer metrics' curve differences, the learning-curve bands.
- A confidence interval is a Student t-interval over seeds (``mean ± t(0.975, n-1) · sd / sqrt(n)``, sample sd
  with ``ddof=1``). With one seed there is no interval: ``low``/``high`` are NaN, never a fake zero-width band.
- A difference between two strategies is Welch's (unequal variances, unpaired): seeds of two strategies are
  different training runs, so nothing pairs them beyond the seed number.
- Learning-curve metrics read one curve: a list of per-epoch values in epoch order, starting at epoch 0 (the
  score before training) when the loop recorded it, else at epoch 1; ``start`` says which. They apply to SGD
  curves only (``curve_kind`` "sgd"): a solved probe's L2 path and zero-shot's single point are not epochs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

CONFIDENCE = 0.95
SLOPE_EPOCHS = 3  # "early" improvement = from the start point up to epoch 3 (two epoch-to-epoch gains)
START_FRACTION = 0.1  # "start" = the score after the first epoch, or after 10 % of a run shorter than 10 epochs
THRESHOLD_FRACTION = 0.9  # time-to-threshold: first time a run reaches 90 % of the best accuracy seen
NEGATIVE_TRANSFER_ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    """Mean over ``n`` finite values with its confidence interval (NaN bounds when ``n < 2``)."""

    mean: float
    low: float
    high: float
    n: int
    sd: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class Difference:
    """``mean(a) - mean(b)`` with a Welch confidence interval and the one-sided p-value for ``a < b``."""

    diff: float
    low: float
    high: float
    p_less: float
    n_a: int
    n_b: int

    def significantly_below(self, alpha: float = NEGATIVE_TRANSFER_ALPHA) -> bool:
        """True when ``a`` is below ``b`` at level ``alpha`` (False when undecidable, e.g. one seed)."""
        return bool(self.p_less < alpha) if math.isfinite(self.p_less) else False


def t_quantile(q: float | np.ndarray, dof: float | np.ndarray) -> float | np.ndarray:
    """Student t quantile (``scipy.stats.t.ppf``) via the raw special function, which is ~100× cheaper."""
    out = special.stdtrit(dof, q)
    return float(out) if np.ndim(out) == 0 else out


def finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """The finite values as a float array (missing metrics from failed or curve-less cells drop out)."""
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Mean and t-interval over seeds; NaN-valued entries are ignored.

    Args:
        values: one value per seed.
        confidence: two-sided coverage of the interval.

    Returns:
        An ``Interval``; with no values everything is NaN and ``n == 0``; with one value the bounds are NaN.
    """
    arr = finite(values)
    n = int(arr.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan)
    mean = float(arr.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, math.nan)
    sd = float(arr.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, sd)


def welch_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
    """Welch interval for ``mean(a) - mean(b)`` and the one-sided Welch t-test p-value for ``a < b``.

    With fewer than two values on either side there is no variance estimate: interval and p-value are NaN.
    When both sides have zero spread the difference is exact: the interval collapses to it and the p-value
    is 0 (``a`` below ``b``) or 1, which is also what the t statistic's limit gives.
    """
    xa, xb = finite(a), finite(b)
    na, nb = int(xa.size), int(xb.size)
    if na == 0 or nb == 0:
        return Difference(math.nan, math.nan, math.nan, math.nan, na, nb)
    diff = float(xa.mean() - xb.mean())
    if na < 2 or nb < 2:
        return Difference(diff, math.nan, math.nan, math.nan, na, nb)
    va, vb = xa.var(ddof=1) / na, xb.var(ddof=1) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        return Difference(diff, diff, diff, 0.0 if diff < 0 else 1.0, na, nb)
    # Welch–Satterthwaite degrees of freedom
    dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    half = t_quantile(0.5 + confidence / 2, dof) * se
    # one-sided Welch test of "a < b": P(T_dof <= t); same value as scipy.stats.ttest_ind(equal_var=False,
    # alternative="less"), without its per-call overhead (thousands of comparisons in a large sweep)
    p_less = float(special.stdtr(dof, diff / se))
    return Difference(diff, diff - half, diff + half, p_less, na, nb)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control); NaNs stay NaN and do not count."""
    finite_at = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted, running = list(p_values), 0.0
    for rank, (p, i) in enumerate(finite_at):
        running = max(running, min(1.0, (len(finite_at) - rank) * p))
        adjusted[i] = running
    return adjusted


# --- learning-curve metrics --------------------------------------------------------------------------------
# One curve = per-epoch validation scores in epoch order. ``start`` is the epoch number of its first point: 0 when
# the loop recorded the score before any training (epoch 0; zero-shot is its own epoch 0), 1 for curves recorded
# before that point existed. Both kinds keep working; metrics say "from epoch 0 when present".


SGD, L2_PATH, NO_CURVE = "sgd", "l2-path", "none"  # ``curve_kind``: what a row's curve points are
CURVE_KINDS = (SGD, L2_PATH, NO_CURVE)


def start_epoch(horizon: float) -> float:
    """Where "start" is read: after the first epoch, or after ``START_FRACTION`` of the run when it has fewer
    than 10 epochs (``horizon`` = the last epoch of the longest run compared). The shared loop records one point
    per epoch, so on its curves this is epoch 1 either way; a loop that records sub-epoch points (fractional
    ``epoch`` numbers) gets the point at 10 % of a short run."""
    return min(1.0, START_FRACTION * horizon) if horizon > 0 else 1.0


def start_point(curve: Sequence[float], epochs: Sequence[float], at: float = 1.0) -> tuple[float, float]:
    """The skill early in training ("higher start") and the epoch it was read at: the first point after training
    began whose epoch is at least ``at`` (see ``start_epoch``). The epoch-0 point (before any step) never counts:
    with a zero-initialised head it is chance for every fine-tuning strategy alike. NaNs when there is no such
    point."""
    for value, epoch in zip(curve, epochs):
        if math.isfinite(epoch) and epoch > 0 and epoch >= at - 1e-9:
            return float(value), float(epoch)
    return math.nan, math.nan


def start_score(curve: Sequence[float], epochs: Sequence[float], at: float = 1.0) -> float:
    """The score of ``start_point``."""
    return start_point(curve, epochs, at)[0]


def jumpstart(curve: Sequence[float]) -> float:
    """The curve's first point: the epoch-0 score (before any training) when the curve has one, else the score
    after epoch 1. NaN for an empty curve. The report's "start" is ``start_score``: with zero-initialised heads
    the epoch-0 point is chance for every fine-tuning strategy, so it cannot tell them apart."""
    return float(curve[0]) if len(curve) else math.nan


def slope(curve: Sequence[float], epochs: int = SLOPE_EPOCHS, start: int = 1) -> float:
    """Mean gain per epoch from the curve's first point up to epoch ``epochs`` ("higher slope").

    ``(curve[j] - curve[0]) / j`` where ``curve[j]`` is epoch ``min(epochs, last epoch)``: with an epoch-0 point
    (``start=0``) that is the gain over the first ``epochs`` epochs of training, without one (``start=1``) the
    gain from epoch 1 to epoch ``epochs``. NaN when the curve has fewer than two points in that range.
    """
    j = min(epochs, start + len(curve) - 1) - start
    if j < 1:
        return math.nan
    return (float(curve[j]) - float(curve[0])) / j


def early_slope(curve: Sequence[float], epochs: Sequence[float], at: float = 1.0,
                until: float = SLOPE_EPOCHS) -> float:
    """Mean gain per epoch from the start point (see ``start_score``) to the last point at or before epoch
    ``until`` ("higher slope"): ``(v(e_k) - v(e_s)) / (e_k - e_s)``. Measured from the start point, not epoch 0,
    so the jump from a zero-initialised head's chance level is not counted as learning speed. NaN when the
    run has no second point in that range."""
    points = [(float(e), float(v)) for v, e in zip(curve, epochs) if math.isfinite(e) and e > 0 and e >= at - 1e-9]
    if not points:
        return math.nan
    first = points[0]
    last = [p for p in points if p[0] <= max(until, first[0]) + 1e-9][-1]
    if last[0] <= first[0]:
        return math.nan
    return (last[1] - first[1]) / (last[0] - first[0])


def asymptote(curve: Sequence[float], selected_epoch: float | None = None, start: int = 1) -> float:
    """Score at the selected epoch ("higher asymptote"); the curve's best when no epoch was recorded."""
    if not len(curve):
        return math.nan
    if selected_epoch is not None and math.isfinite(selected_epoch) and 0 <= int(selected_epoch) - start < len(curve):
        return float(curve[int(selected_epoch) - start])
    return float(np.max(curve))


def area_under_curve(curve: Sequence[float], horizon: int | None = None, start: int = 1) -> float:
    """Normalised area under the learning curve: mean score over epochs ``start``..``horizon``.

    ``horizon`` is the last epoch of the longest run being compared; runs that stopped early keep their last
    score up to it, so a strategy is neither rewarded nor punished for early stopping. From epoch 0 when the
    curve has that point (``start=0``), so the skill before training counts. In the score's units.
    """
    if not len(curve):
        return math.nan
    values = [float(v) for v in curve]
    last = start + len(values) - 1
    values += [values[-1]] * (max(horizon or last, last) - last)
    return float(np.mean(values))


def time_to_threshold(curve: Sequence[float], times: Sequence[float], threshold: float) -> float:
    """Wall seconds (since the cell started) at the end of the first epoch reaching ``threshold``; NaN if never."""
    for value, seconds in zip(curve, times):
        if value >= threshold and seconds is not None and math.isfinite(seconds):
            return float(seconds)
    return math.nan


def pareto_front(times: Sequence[float], scores: Sequence[float]) -> np.ndarray:
    """Indices of the points not dominated by a faster-or-equal, at-least-as-accurate point, by time."""
    t, s = np.asarray(times, dtype=float), np.asarray(scores, dtype=float)
    ok = np.flatnonzero(np.isfinite(t) & np.isfinite(s))
    front, best = [], -math.inf
    for i in ok[np.lexsort((-s[ok], t[ok]))]:  # by time, ties best score first
        if s[i] > best:
            front.append(int(i))
            best = s[i]
    return np.asarray(front, dtype=int)
