"""Intervals and tests over seeds and test examples (bench.results.uncertainty), in the verdict, the leaderboard,
the summary, the crossover and the page (issue 17)."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from scipy import stats as scipy_stats
from sklearn.metrics import f1_score

import report
from bench.results import to_frame, write_row
from bench.results import uncertainty as u
from bench.results.predictions import SplitPredictions, write_predictions
from report import crossover, summary, synthetic, tables
from report.verdict import compute_verdict

STRATEGIES = ("from-scratch", "feature-extraction", "partial-freeze", "full-fine-tune", "zero-shot")
NOISE_SEEDS = {"from-scratch": 2, "feature-extraction": 3, "partial-freeze": 3, "full-fine-tune": 2, "zero-shot": 2}


def calls(v) -> int:
    return sum(bool(r.significant) for g in v.groups for r in g.results)


def bounds(v) -> list[float]:
    return [x for g in v.groups for r in g.results for x in (r.low, r.high)]


def split(correct: np.ndarray, y: np.ndarray | None = None, classes: int = 2) -> SplitPredictions:
    y = np.zeros(len(correct), dtype=int) if y is None else y
    pred = np.where(correct, y, (y + 1) % classes)
    return SplitPredictions(np.arange(len(correct)), y, pred, np.zeros((len(correct), classes)))


# --- the acceptance case --------------------------------------------------------------------------------


@pytest.mark.parametrize("with_predictions", [True, False])
def test_pure_noise_gives_at_most_two_calls_in_twenty_groups_and_bounded_intervals(with_predictions):
    """Every strategy 0.80 on 500 test examples, 20 groups, 2–3 seeds, feature-extraction and zero-shot identical
    across seeds. Without predictions the binomial model stands in (older results)."""
    rows, preds = synthetic.predicted_sweep(dict.fromkeys(STRATEGIES, 0.80), groups=20, seeds=NOISE_SEEDS)
    frame = to_frame(rows)
    v = compute_verdict(frame, predictions=preds if with_predictions else None)
    assert len(v.groups) == 20 and all(g.status == "decided" for g in v.groups)
    assert all(g.paired == with_predictions for g in v.groups)
    assert calls(v) <= 2, [(g.task, r.strategy, r.p) for g in v.groups for r in g.results if r.significant]
    assert all(0.0 <= x <= 1.0 for x in bounds(v))
    # deterministic strategies still get a test-sampling band (about ±3.5 points at n = 500), not zero width
    probe = [r for g in v.groups for r in g.results if r.strategy == "feature-extraction"]
    assert all(0.05 < r.high - r.low < 0.09 for r in probe)
    board = tables.leaderboard(tables.normalize(frame), preds if with_predictions else None)
    for col in ("accuracy_ci_low", "accuracy_ci_high", "macro_f1_ci_low", "macro_f1_ci_high"):
        assert board[col].between(0, 1).all()
    assert (board["n_test"] == 500).all()


def test_false_positive_rate_stays_near_alpha_over_many_groups():
    """200 groups of pure noise: the share of groups with any significant call is at most alpha plus sampling
    slack (three binomial standard errors)."""
    rows, preds = synthetic.predicted_sweep(dict.fromkeys(("feature-extraction", "partial-freeze", "full-fine-tune"),
                                                          0.80), groups=200, seeds=2, rng_seed=7)
    v = compute_verdict(to_frame(rows), predictions=preds)
    rate = np.mean([any(r.significant for r in g.results) for g in v.groups])
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 200)


def test_a_real_five_point_gap_at_2000_test_examples_is_found():
    rows, preds = synthetic.predicted_sweep({"feature-extraction": 0.80, "full-fine-tune": 0.85}, groups=5, seeds=3,
                                            n_test=2000, rng_seed=3)
    v = compute_verdict(to_frame(rows), predictions=preds)
    assert all(g.best == "full-fine-tune" and g.lead_significant for g in v.groups)
    assert all(g.tied == ["full-fine-tune"] for g in v.groups)


# --- the statistics themselves ---------------------------------------------------------------------------------


def test_one_seed_pairs_agree_with_the_exact_mcnemar_test():
    rng = np.random.default_rng(3)
    for gap in (0.0, 0.05, 0.1, 0.3):
        a = rng.random(500) < 0.8
        b = a.copy()
        redo = rng.random(500) < 0.3
        b[redo] = rng.random(int(redo.sum())) < 0.8 - gap
        cmp = u.compare({"a": u.StrategyCells(np.array([a.mean()]), 500, [split(a)]),
                         "b": u.StrategyCells(np.array([b.mean()]), 500, [split(b)])}, key=("mcnemar", gap))
        n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
        exact = scipy_stats.binomtest(n10, n10 + n01).pvalue if n10 + n01 else 1.0
        p = cmp.p_value("a", "b")
        assert p == pytest.approx(exact, abs=0.15)
        if gap >= 0.3:  # a clear difference (about 9 points): both tests see it
            assert p < 0.01 and exact < 0.01
        assert cmp.estimates["a"].method == u.TEST_ONLY


def test_deterministic_strategy_needs_no_special_case():
    correct = np.random.default_rng(0).random(500) < 0.8
    one = u.estimate(u.StrategyCells(np.array([correct.mean()]), 500, [split(correct)]), key=("k",))
    three = u.estimate(u.StrategyCells(np.full(3, correct.mean()), 500, [split(correct)] * 3), key=("k",))
    assert one.method == u.TEST_ONLY and three.method == u.SEEDS_AND_TEST
    assert three.high - three.low == pytest.approx(one.high - one.low, abs=0.01)
    # the binomial standard error at p = 0.8, n = 500 is 0.0179: the 95 % band is about 4 of them wide
    assert three.high - three.low == pytest.approx(4 * 0.0179, abs=0.01)


def test_seed_spread_widens_the_interval():
    rng = np.random.default_rng(1)
    base = rng.random(500) < 0.75
    seeds = [base.copy() for _ in range(3)]
    for s, shift in zip(seeds, (0.0, 0.3, 0.6)):  # seeds that really differ (0.75 … 0.9): the interval must grow
        s[rng.random(500) < shift] = True
    spread = u.estimate(u.StrategyCells(np.array([s.mean() for s in seeds]), 500, [split(s) for s in seeds]),
                        key=("s",))
    same = u.estimate(u.StrategyCells(np.full(3, base.mean()), 500, [split(base)] * 3), key=("s",))
    assert spread.high - spread.low > same.high - same.low + 0.02


def test_macro_f1_is_recomputed_on_each_resample():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 5, 400)
    cells = []
    for _ in range(2):
        pred = np.where(rng.random(400) < 0.7, y, rng.integers(0, 5, 400))
        cells.append(SplitPredictions(np.arange(400), y, pred, np.zeros((400, 5))))
    values = np.array([f1_score(y, c.pred, average="macro") for c in cells])
    est = u.estimate(u.StrategyCells(values, 400, cells), "macro_f1", key=("f1",))
    assert est.mean == pytest.approx(values.mean(), abs=1e-9)  # same definition as the training loop's sklearn
    assert 0 <= est.low < est.mean < est.high <= 1 and est.high - est.low > 0.03


def test_pairing_on_ids_uses_only_shared_examples_in_one_order():
    correct = np.random.default_rng(4).random(300) < 0.7
    shuffled = np.random.default_rng(5).permutation(300)
    a = split(correct)
    b = SplitPredictions(a.ids[shuffled], a.y[shuffled], a.pred[shuffled], a.proba[shuffled])  # same cell, reordered
    cmp = u.compare({"a": u.StrategyCells(np.array([correct.mean()]), 300, [a]),
                     "b": u.StrategyCells(np.array([correct.mean()]), 300, [b])}, key=("ids",))
    assert cmp.paired and cmp.difference("a", "b").diff == 0 and cmp.p_value("a", "b") == 1.0
    assert cmp.difference("a", "b").low == cmp.difference("a", "b").high == 0


def test_fallbacks_and_their_labels():
    binom = u.estimate(u.StrategyCells(np.array([0.80, 0.82]), 500))
    assert binom.method == u.BINOMIAL and 0.75 < binom.low < binom.high < 0.87
    assert u.estimate(u.StrategyCells(np.array([0.80]), 500)).method == u.BINOMIAL_ONE_SEED
    nothing = u.estimate(u.StrategyCells(np.array([0.80]), None))
    assert nothing.method == u.SEEDS_ONLY and math.isnan(nothing.low)
    empty = u.estimate(u.StrategyCells(np.array([]), 500))
    assert empty.n_seeds == 0 and math.isnan(empty.mean)


@pytest.mark.parametrize("with_predictions", [True, False])
def test_summary_and_leaderboard_print_the_same_interval(with_predictions):
    """The verdict alone (``transferbench summary``: main metric only) and the report (accuracy and macro-F1 on
    shared draws) resample identically."""
    rows, preds = synthetic.predicted_sweep(dict.fromkeys(STRATEGIES[:3], 0.8), groups=2, seeds=2)
    preds = preds if with_predictions else None
    frame = tables.normalize(to_frame(rows))
    board = tables.leaderboard(frame, preds).set_index(["task", "strategy"])
    for g in compute_verdict(frame, predictions=preds).groups:
        for r in g.results:
            row = board.loc[(g.task, r.strategy)]
            assert (r.low, r.high) == (row["accuracy_ci_low"], row["accuracy_ci_high"])


def test_resampling_is_reproducible():
    rows, preds = synthetic.predicted_sweep(dict.fromkeys(STRATEGIES[:3], 0.8), groups=3, seeds=2)
    first, second = (compute_verdict(to_frame(rows), predictions=preds) for _ in range(2))
    assert first.table().drop(columns=[]).equals(second.table())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.floats(0, 1), min_size=1, max_size=4), n_test=st.one_of(st.none(), st.integers(1, 3000)),
       accuracies=st.lists(st.floats(0, 1), min_size=1, max_size=3), n=st.integers(1, 60),
       metric=st.sampled_from(u.METRICS))
def test_bounds_always_inside_the_range_and_around_the_mean(values, n_test, accuracies, n, metric):
    est = u.estimate(u.StrategyCells(np.array(values), n_test), metric, key=("p",))
    if est.has_interval:
        assert 0.0 <= est.low <= est.mean <= est.high <= 1.0
    rng = np.random.default_rng(len(values))
    y = rng.integers(0, 3, n)
    cells = [split(rng.random(n) < a, y, 3) for a in accuracies]
    scores = np.array([(c.pred == c.y).mean() if metric == "accuracy"
                       else f1_score(c.y, c.pred, average="macro", zero_division=0) for c in cells])
    est = u.estimate(u.StrategyCells(scores, n, cells), metric, key=("q",))
    assert 0.0 <= est.low <= est.mean <= est.high <= 1.0


# --- where the numbers are shown --------------------------------------------------------------------------------


def test_quick_run_case_has_no_unbounded_or_plus_minus_intervals():
    """The issue's quick-run symptoms: two seeds far apart ('0.704 ± 1.045') and a zero-shot with zero spread
    ('0.582 ± 0.000 … p = 0.000')."""
    rows = [{"task": "t", "backbone": "b", "strategy": s, "seed": seed, "fraction": 1.0, "status": "ok",
             "accuracy": a, "macro_f1": a - 0.02, "main_metric": "accuracy", "role": "final", "n_test": 300,
             "cell": f"{s}-{seed}"} for s, accs in (("full-fine-tune", (0.62, 0.79)), ("zero-shot", (0.582, 0.582)))
            for seed, a in enumerate(accs)]
    frame = pd.DataFrame(rows)
    page = report.render_html(frame)
    assert "±" not in re.sub(r"<script.*?</script>", "", page, flags=re.S)
    numbers = [float(x) for x in re.findall(r"\[(-?\d\.\d+), (-?\d\.\d+)\]", page) for x in x]
    assert numbers and all(0 <= x <= 1 for x in numbers)
    v = compute_verdict(frame)
    zs = next(r for r in v.groups[0].results if r.strategy == "zero-shot")
    assert zs.high - zs.low > 0.05 and zs.p > 0.05  # a binomial band, and no "p = 0.000" against seed noise


def test_summary_prints_intervals_with_their_n(tmp_path):
    rows, preds = synthetic.predicted_sweep({"feature-extraction": 0.7, "full-fine-tune": 0.9}, groups=2, seeds=2)
    buffer = io.StringIO()
    summary.print_summary(to_frame(rows), Console(file=buffer, width=200), predictions=preds)
    text = buffer.getvalue()
    assert "2 seeds × 500 test" in text and "paired on test examples" in text and "±" not in text
    assert "below (significant)" in text and "Tied for best" in text


def test_report_reads_prediction_files_and_exports_the_crossover(tmp_path):
    """Fine-tuning overtakes a flat probe between 10 % and 50 % labels; files on disk as the runner writes them."""
    curve = {0.01: 0.55, 0.1: 0.74, 0.5: 0.86, 1.0: 0.90}
    rows, preds = synthetic.predicted_sweep({"feature-extraction": 0.80, "full-fine-tune": curve.get}, groups=2,
                                            seeds=2, fractions=tuple(curve), n_test=1000)
    for row in rows:
        write_row(tmp_path, row)
        write_predictions(tmp_path, row["cell"], preds[row["cell"]])
    out = report.build_report(tmp_path)
    page = out.read_text(encoding="utf-8")
    assert 'id="crossover"' in page and "paired" in page and page.index('id="verdict"') < page.index('id="crossover"')
    summary_csv = pd.read_csv(tmp_path / "report_crossover_summary.csv")
    assert list(summary_csv["crossover"]) == [0.5, 0.5]
    assert (summary_csv["diff_low"] > 0).all()
    long = pd.read_csv(tmp_path / "report_crossover.csv")
    assert long["paired"].all() and set(long["fraction"]) == set(curve)
    assert (tmp_path / "report_verdict.csv").is_file()


def test_crossover_needs_the_lead_to_hold_at_every_larger_fraction():
    assert crossover._start([False, True, False, True, True]) == 3
    assert crossover._start([True, True]) == 0 and crossover._start([True, False]) is None
    rows, preds = synthetic.predicted_sweep({"feature-extraction": 0.8, "full-fine-tune": 0.8, "from-scratch": 0.5},
                                            groups=1, seeds=2, fractions=(0.1, 1.0))
    v = compute_verdict(to_frame(rows), predictions=preds)
    table = crossover.crossover_table(v)
    assert set(table["strategy"]) == {"full-fine-tune"}  # from-scratch is not fine-tuning
    assert math.isnan(crossover.crossover_summary(table)["crossover"].iloc[0])
