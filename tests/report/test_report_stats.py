"""Statistics behind the report: CIs over seeds, curve metrics, transfer metrics, negative-transfer test.

Expected values are worked out by hand (t quantiles from a table) rather than recomputed with the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bench.results import seedstats as stats
from report import tables
from tests.helpers import fixtures_results as fx

T_975_DF2 = 4.302653  # Student t 0.975 quantile, 2 degrees of freedom (table value)


def test_mean_ci_matches_the_t_table():
    ci = stats.mean_ci([0.8, 0.9, 1.0])
    half = T_975_DF2 * 0.1 / math.sqrt(3)  # sd of (0.8, 0.9, 1.0) is 0.1
    assert (ci.n, ci.mean) == (3, pytest.approx(0.9))
    assert ci.low == pytest.approx(0.9 - half, abs=1e-6)
    assert ci.high == pytest.approx(0.9 + half, abs=1e-6)
    assert ci.half_width == pytest.approx(half, abs=1e-6)


def test_mean_ci_single_seed_has_no_interval_and_empty_is_nan():
    one = stats.mean_ci([0.7])
    assert one.n == 1 and one.mean == 0.7 and math.isnan(one.low) and math.isnan(one.high)
    none = stats.mean_ci([])
    assert none.n == 0 and math.isnan(none.mean)


def test_mean_ci_ignores_missing_values():
    assert stats.mean_ci([0.8, float("nan"), 0.9, 1.0, None]).n == 3


def test_welch_difference_agrees_with_scipy_and_the_formula():
    a, b = [0.50, 0.52, 0.55, 0.49, 0.51], [0.70, 0.72, 0.69]
    d = stats.welch_difference(a, b)
    ref = scipy_stats.ttest_ind(a, b, equal_var=False, alternative="less")
    assert d.p_less == pytest.approx(ref.pvalue, rel=1e-9)
    va, vb = np.var(a, ddof=1) / 5, np.var(b, ddof=1) / 3
    dof = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 2)
    half = scipy_stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert d.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert (d.low, d.high) == (pytest.approx(d.diff - half), pytest.approx(d.diff + half))
    assert d.significantly_below()
    assert not stats.welch_difference(b, a).significantly_below()


def test_welch_difference_needs_two_values_per_side():
    d = stats.welch_difference([0.5], [0.7, 0.71])
    assert d.diff == pytest.approx(-0.205) and math.isnan(d.low) and math.isnan(d.p_less)
    assert not d.significantly_below()


def test_welch_difference_without_spread_is_exact():
    d = stats.welch_difference([0.5, 0.5], [0.7, 0.7])
    assert (d.low, d.high, d.p_less) == (pytest.approx(-0.2), pytest.approx(-0.2), 0.0)


def test_curve_metrics_on_the_issue_example():
    transfer, scratch = [0.5, 0.6, 0.7], [0.3, 0.5, 0.7]
    assert stats.jumpstart(transfer) - stats.jumpstart(scratch) == pytest.approx(0.2)
    assert stats.asymptote(transfer, 3) == stats.asymptote(scratch, 3) == pytest.approx(0.7)
    assert stats.slope(transfer) == pytest.approx(0.1) and stats.slope(scratch) == pytest.approx(0.2)
    assert stats.area_under_curve(transfer) == pytest.approx(0.6)
    assert stats.area_under_curve(scratch) == pytest.approx(0.5)


def test_curve_metric_edge_cases():
    assert math.isnan(stats.jumpstart([])) and math.isnan(stats.slope([0.4])) and math.isnan(stats.asymptote([]))
    assert stats.slope([0.1, 0.2, 0.4, 0.9], epochs=3) == pytest.approx(0.15)  # only the first three epochs
    assert stats.asymptote([0.2, 0.6, 0.5], selected_epoch=2) == 0.6
    assert stats.asymptote([0.2, 0.6, 0.5]) == 0.6  # no selected epoch recorded: the best
    assert stats.area_under_curve([0.2, 0.4], horizon=4) == pytest.approx((0.2 + 0.4 * 3) / 4)


def test_time_to_threshold():
    assert stats.time_to_threshold([0.3, 0.6, 0.8], [10, 20, 30], 0.6) == 20
    assert math.isnan(stats.time_to_threshold([0.3, 0.5], [10, 20], 0.6))


def test_pareto_front():
    times, scores = [1, 2, 3, 4, 5], [0.5, 0.4, 0.7, 0.7, 0.9]
    assert list(stats.pareto_front(times, scores)) == [0, 2, 4]


def _row(metrics, strategy, fraction=1.0):
    hits = metrics[(metrics["strategy"] == strategy) & (metrics["fraction"] == fraction)]
    assert len(hits) == 1, hits
    return hits.iloc[0]


def test_transfer_metrics_issue_example():
    m = tables.transfer_metrics(tables.normalize(fx.frame(fx.issue_example())))
    ft = _row(m, "full-fine-tune")
    assert ft["start_delta"] == pytest.approx(0.2)
    assert ft["asymptote_delta"] == pytest.approx(0.0)
    assert ft["slope_delta"] == pytest.approx(-0.1)
    assert ft["aulc_delta"] == pytest.approx(0.1)
    # identical seeds: the Welch interval collapses onto the difference
    assert (ft["start_delta_low"], ft["start_delta_high"]) == (pytest.approx(0.2), pytest.approx(0.2))
    # threshold = 90 % of the best (0.7) = 0.63: both reach it at epoch 3 (3 s/epoch vs 2 s/epoch)
    assert ft["threshold"] == pytest.approx(0.63)
    assert ft["time_to_threshold_s_mean"] == pytest.approx(9.0)
    assert ft["time_to_threshold_s_delta"] == pytest.approx(9.0 - 6.0)
    assert ft["negative_transfer"] is not None and not ft["negative_transfer"]  # decided, and not negative
    base = _row(m, "from-scratch")
    assert base["start_mean"] == pytest.approx(0.3) and math.isnan(base["start_delta"])


def test_negative_transfer_is_flagged_only_when_significant():
    rows = []
    for seed, (bad, good, scratch) in enumerate([(0.50, 0.80, 0.70), (0.52, 0.82, 0.71), (0.51, 0.79, 0.69)]):
        rows.append(fx.make_row(strategy="from-scratch", seed=seed, curve=[0.4, scratch]))
        rows.append(fx.make_row(strategy="feature-extraction", seed=seed, curve=[0.45, bad]))
        rows.append(fx.make_row(strategy="full-fine-tune", seed=seed, curve=[0.6, good]))
    m = tables.transfer_metrics(tables.normalize(fx.frame(rows)))
    assert bool(_row(m, "feature-extraction")["negative_transfer"]) is True
    assert _row(m, "feature-extraction")["p_below_scratch"] < 0.05
    assert bool(_row(m, "full-fine-tune")["negative_transfer"]) is False


def test_single_seed_leaves_negative_transfer_undecided():
    rows = [fx.make_row(strategy="from-scratch", curve=[0.3, 0.7]),
            fx.make_row(strategy="full-fine-tune", curve=[0.2, 0.4])]
    ft = _row(tables.transfer_metrics(tables.normalize(fx.frame(rows))), "full-fine-tune")
    assert ft["negative_transfer"] is None and ft["accuracy_delta"] == pytest.approx(-0.3)
    assert math.isnan(ft["start_delta_low"])


def test_missing_baseline_gives_absolute_values_only():
    rows = [fx.make_row(strategy="full-fine-tune", seed=s, curve=[0.5, 0.6]) for s in range(2)]
    ft = _row(tables.transfer_metrics(tables.normalize(fx.frame(rows))), "full-fine-tune")
    assert not ft["baseline"] and ft["start_mean"] == pytest.approx(0.5)
    assert math.isnan(ft["start_delta"]) and ft["negative_transfer"] is None


def test_zero_shot_has_no_curve_metrics_but_an_asymptote():
    rows = [fx.make_row(strategy="from-scratch", seed=s, curve=[0.3, 0.6]) for s in range(2)]
    rows += [fx.make_row(strategy="zero-shot", seed=s, curve=[], accuracy=0.4, val_accuracy=0.45) for s in range(2)]
    zs = _row(tables.transfer_metrics(tables.normalize(fx.frame(rows))), "zero-shot")
    # no SGD curve: no slope, area or time; start and asymptote are its validation score (it does not train)
    assert math.isnan(zs["slope_mean"]) and math.isnan(zs["aulc_mean"]) and math.isnan(zs["time_to_threshold_s_mean"])
    assert zs["start_mean"] == pytest.approx(0.45) and zs["curve_kind"] == "none"
    assert zs["asymptote_mean"] == pytest.approx(0.45)
    assert zs["asymptote_delta"] == pytest.approx(0.45 - 0.6)


def test_leaderboard_ci_counts_and_best_flags():
    rows = [fx.make_row(strategy="from-scratch", seed=s, curve=[0.5], accuracy=a) for s, a in
            enumerate([0.60, 0.62, 0.64, 0.66, 0.68])]
    rows += [fx.make_row(strategy="full-fine-tune", seed=s, curve=[0.8], accuracy=0.9) for s in range(2)]
    rows += [fx.make_row(strategy="full-fine-tune", seed=9, status="error", error="boom")]
    board = tables.leaderboard(tables.normalize(fx.frame(rows)))
    scratch, ft = (board[board["strategy"] == s].iloc[0] for s in ("from-scratch", "full-fine-tune"))
    # issue 17: a bootstrap percentile interval replaced the t-interval (these rows record no n_test, so only
    # the seeds are resampled); scipy's percentile bootstrap is the reference, up to resampling noise
    seeds = np.array([0.60, 0.62, 0.64, 0.66, 0.68])
    ref = scipy_stats.bootstrap((seeds,), np.mean, method="percentile", n_resamples=20000,
                                random_state=1).confidence_interval
    assert scratch["n"] == 5 and scratch["accuracy_mean"] == pytest.approx(0.64)
    assert scratch["interval"] == "seeds only (no predictions, n_test unknown)"
    assert scratch["accuracy_ci_low"] == pytest.approx(ref.low, abs=0.004)
    assert scratch["accuracy_ci_high"] == pytest.approx(ref.high, abs=0.004)
    assert (ft["n"], ft["failed"]) == (2, 1)
    assert bool(ft["best_accuracy"]) and not bool(scratch["best_accuracy"])


def test_curve_summary_band_per_epoch():
    rows = [fx.make_row(strategy="from-scratch", seed=s, curve=c) for s, c in
            enumerate([[0.2, 0.4], [0.3, 0.5], [0.4]])]  # third seed stopped after one epoch
    curves = tables.curve_summary(tables.normalize(fx.frame(rows))).sort_values("epoch")
    first, second = curves.iloc[0], curves.iloc[1]
    assert (first["n"], second["n"]) == (3, 2)
    assert first["mean"] == pytest.approx(0.3)
    assert first["high"] - first["mean"] == pytest.approx(T_975_DF2 * 0.1 / math.sqrt(3), abs=1e-6)
