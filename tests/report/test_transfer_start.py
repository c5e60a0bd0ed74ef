"""Transfer metrics that mean what the lectures say: "start" after the first epoch, no slope from an L2 path."""

from __future__ import annotations

import json
import math

import pytest

from bench.results import seedstats as stats
from report import render_html, tables
from tests.helpers import fixtures_results as fx


def curve_row(strategy: str, seed: int, values: list[float], first_epoch: int = 0, **extra) -> dict:
    """A row whose curve has the given per-epoch values, the first at epoch ``first_epoch``."""
    row = fx.make_row(strategy=strategy, seed=seed, curve=[v for v in values if v is not None], **extra)
    points = [{"epoch": first_epoch + i, "val_accuracy": v, "time_s": 1.0 + i} for i, v in enumerate(values)]
    row["curve"] = json.dumps(points)
    return row


def probe_row(seed: int, path: list[float], chosen: int, **extra) -> dict:
    """feature-extraction's solved probe: one curve point per L2 strength (numbered as epochs), as it records."""
    row = fx.make_row(strategy="feature-extraction", seed=seed, curve=path, **extra)
    points = [{"epoch": i + 1, "l2": 10.0 ** -i, "val_accuracy": v, "time_s": 0.1 * (i + 1)}
              for i, v in enumerate(path)]
    row.update(curve=json.dumps(points), best_epoch=chosen, val_accuracy=path[chosen - 1])
    return row


def _metrics(rows):
    table = tables.transfer_metrics(tables.normalize(fx.frame(rows)))
    return {r["strategy"]: r for _, r in table.iterrows()}


def test_start_is_after_the_first_epoch_not_the_chance_level_at_epoch_0():
    # zero-initialised heads: every strategy is at chance (1/3) before training
    rows = [curve_row("from-scratch", s, [1 / 3, 0.40, 0.55, 0.65]) for s in range(2)]
    rows += [curve_row("full-fine-tune", s, [1 / 3, 0.70, 0.80, 0.85]) for s in range(2)]
    rows += [curve_row("partial-freeze", s, [1 / 3, 0.60, 0.75, 0.80]) for s in range(2)]
    m = _metrics(rows)
    assert m["from-scratch"]["start_mean"] == pytest.approx(0.40)
    assert m["full-fine-tune"]["start_delta"] == pytest.approx(0.30)  # the jumpstart
    assert m["partial-freeze"]["start_delta"] == pytest.approx(0.20)  # different strategies, different starts
    assert m["full-fine-tune"]["start_epoch"] == 1.0
    assert m["full-fine-tune"]["slope_mean"] == pytest.approx((0.85 - 0.70) / 2)  # epochs 1..3
    assert m["full-fine-tune"]["aulc_mean"] == pytest.approx((1 / 3 + 0.70 + 0.80 + 0.85) / 4)  # from epoch 0
    # the epoch-0 point stays in the learning curves for the plots
    curves = tables.curve_summary(tables.normalize(fx.frame(rows)))
    assert 0 in set(curves["epoch"])


def test_start_epoch_rule():
    assert stats.start_epoch(3) == pytest.approx(0.3) and stats.start_epoch(50) == 1.0
    # per-epoch curves: the first point at or after 0.3 epochs is epoch 1
    assert stats.start_score([0.1, 0.5, 0.6], [0, 1, 2], at=stats.start_epoch(2)) == 0.5
    # a loop that records sub-epoch points: 10 % of a 3-epoch run is read at epoch 0.3
    assert stats.start_score([0.1, 0.2, 0.3, 0.5], [0, 0.15, 0.3, 1], at=stats.start_epoch(3)) == 0.3
    assert math.isnan(stats.start_score([0.1], [0], at=1.0))  # only the before-training point: no start
    assert stats.early_slope([0.1, 0.5, 0.6, 0.9, 1.0], [0, 1, 2, 3, 4]) == pytest.approx(0.2)
    assert math.isnan(stats.early_slope([0.1, 0.5], [0, 1]))


def test_solved_probe_and_zero_shot_have_no_slope_area_or_time():
    rows = [curve_row("from-scratch", s, [0.1, 0.40, 0.55, 0.65]) for s in range(2)]
    rows += [probe_row(s, [0.5, 0.72, 0.70, 0.60], chosen=2, curve_kind=stats.L2_PATH) for s in range(2)]
    rows += [curve_row("zero-shot", s, [0.45], accuracy=0.44, val_accuracy=0.45, curve_kind=stats.NO_CURVE)
             for s in range(2)]
    m = _metrics(rows)
    for strategy in ("feature-extraction", "zero-shot"):
        for metric in ("slope", "aulc", "time_to_threshold_s"):
            assert math.isnan(m[strategy][f"{metric}_mean"]), (strategy, metric)
    # start and asymptote: the score of what it hands over (the chosen strength; the zero-shot score)
    assert m["feature-extraction"]["start_mean"] == pytest.approx(0.72)
    assert m["feature-extraction"]["asymptote_mean"] == pytest.approx(0.72)
    assert m["zero-shot"]["start_mean"] == pytest.approx(0.45) and m["zero-shot"]["curve_kind"] == "none"
    assert m["feature-extraction"]["curve_kind"] == "l2-path"
    # and the L2 path does not set the group's time-to-threshold horizon or its start point
    assert m["from-scratch"]["start_epoch"] == 1.0


def test_rows_recorded_before_curve_kind_fall_back_on_the_curve():
    probe = probe_row(0, [0.5, 0.72, 0.70], chosen=2)  # no curve_kind column, but its points carry "l2"
    zero = curve_row("zero-shot", 0, [0.45], accuracy=0.44)  # only the epoch-0 point
    old_sgd = fx.make_row(strategy="feature-extraction", seed=1, curve=[0.5, 0.6])  # version 1 trained by SGD
    norm = tables.normalize(fx.frame([probe, zero, old_sgd]))
    kinds = dict(zip(norm["cell"], norm["_curve_kind"]))
    assert [kinds[r["cell"]] for r in (probe, zero, old_sgd)] == [stats.L2_PATH, stats.NO_CURVE, stats.SGD]
    assert tables.curve_kind(None, "[]") == stats.NO_CURVE and tables.curve_kind("sgd", "[]") == stats.SGD


def test_lp_ft_is_an_sgd_curve_whose_epoch_0_is_the_probe():
    # lp-ft's epoch 0 is its solved probe (not chance); start is still read after one epoch of fine-tuning
    rows = [curve_row("from-scratch", s, [0.1, 0.40, 0.55]) for s in range(2)]
    rows += [curve_row("lp-ft", s, [0.70, 0.74, 0.78], curve_kind=stats.SGD) for s in range(2)]
    lpft = _metrics(rows)["lp-ft"]
    assert lpft["start_mean"] == pytest.approx(0.74) and lpft["slope_mean"] == pytest.approx(0.04)
    assert lpft["aulc_mean"] == pytest.approx((0.70 + 0.74 + 0.78) / 3)


def test_page_shows_a_dash_for_the_probe_slope():
    rows = [curve_row("from-scratch", s, [0.1, 0.40, 0.55]) for s in range(2)]
    rows += [probe_row(s, [0.5, 0.72], chosen=2) for s in range(2)]
    page = render_html(fx.frame(rows))
    assert "solved probe: no SGD curve" in page
