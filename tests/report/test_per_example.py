"""Confusion matrices, calibration (ECE, reliability) and the search-vs-final alarm, from stored predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve

from bench.results.predictions import CellPredictions, SplitPredictions, read_many, write_predictions
from report import alarm, build_report, perexample, tables
from tests.helpers import fixtures_results as fx
from tests.helpers.predictions import write_for_rows

# --- ECE -----------------------------------------------------------------------------------------------------


def test_ece_on_a_hand_computed_case():
    # bins of width 1/15: 0.9 and 0.9 share bin 13 (one right: accuracy 0.5), 0.62 is bin 9, 0.31 bin 4
    result = perexample.calibration(np.array([0.9, 0.9, 0.62, 0.31]), np.array([True, False, True, False]))
    assert result.ece == pytest.approx(2 / 4 * abs(0.5 - 0.9) + 1 / 4 * abs(1 - 0.62) + 1 / 4 * abs(0 - 0.31))
    assert result.n == 4 and result.accuracy == pytest.approx(0.5)
    assert list(result.bins["bin"]) == [4, 9, 13] and list(result.bins["n"]) == [1, 1, 2]


def test_ece_bins_are_right_closed_and_cover_zero_and_one():
    result = perexample.calibration(np.array([0.0, 1.0]), np.array([False, True]))
    assert list(result.bins["bin"]) == [0, 14] and result.ece == pytest.approx(0.0)


def test_ece_matches_scikit_learn_reliability_bins():
    rng = np.random.default_rng(3)
    conf = rng.uniform(0.34, 1.0, 5000)
    correct = rng.random(5000) < conf ** 1.5  # over-confident
    ours = perexample.calibration(conf, correct)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=15, strategy="uniform")
    counts, _ = np.histogram(conf, bins=np.linspace(0, 1, 16))
    counts = counts[counts > 0]
    reference = float(np.sum(counts / counts.sum() * np.abs(prob_true - prob_pred)))
    assert ours.ece == pytest.approx(reference, abs=1e-12)
    assert ours.ece > 0.05  # and it sees the over-confidence
    assert np.allclose(ours.bins["accuracy"], prob_true) and np.allclose(ours.bins["confidence"], prob_pred)


def test_ece_of_no_predictions_is_nan():
    assert np.isnan(perexample.calibration(np.array([]), np.array([])).ece)


# --- confusion from known predictions --------------------------------------------------------------------------


def _write(results_dir, row, y, pred, classes=("a", "b", "c")):
    proba = np.full((len(y), len(classes)), 0.1)
    proba[np.arange(len(y)), pred] = 0.8
    write_predictions(results_dir, row["cell"], CellPredictions(
        SplitPredictions(np.arange(len(y)), np.array(y), np.array(pred), proba.astype(np.float16)),
        classes=classes))


def test_confusion_sums_seeds_and_normalises_rows(tmp_path):
    rows = [fx.make_row(strategy="full-fine-tune", seed=s, curve=[0.5, 0.6]) for s in range(2)]
    _write(tmp_path, rows[0], y=[0, 0, 1, 2], pred=[0, 1, 1, 2])
    _write(tmp_path, rows[1], y=[0, 0, 1, 2], pred=[0, 0, 2, 2])
    final = tables.normalize(fx.frame(rows))
    per = perexample.compute(final, read_many(tmp_path, final["cell"]))
    assert per.cells == 2 and per.missing == 0
    grid = per.confusion.pivot(index="true_class", columns="predicted_class", values="count")
    assert grid.loc["a"].tolist() == [3, 1, 0] and grid.loc["b"].tolist() == [0, 1, 1]
    assert grid.loc["c"].tolist() == [0, 0, 2]
    shares = per.confusion.groupby("true_class")["share"].sum()
    assert np.allclose(shares, 1.0)
    assert per.confusion.loc[(per.confusion["true_class"] == "a") & (per.confusion["predicted_class"] == "a"),
                             "share"].item() == pytest.approx(0.75)
    calib = per.calibration.iloc[0]
    assert calib["n"] == 8 and calib["seeds"] == 2 and calib["accuracy"] == pytest.approx(6 / 8)
    top = perexample.top_confused(per.confusion)
    assert list(zip(top["true_class"], top["predicted_class"])) == [("b", "c"), ("a", "b")]


def test_results_without_predictions_give_an_empty_section(tmp_path):
    final = tables.normalize(fx.frame([fx.make_row(curve=[0.5])]))
    per = perexample.compute(final, read_many(tmp_path, final["cell"]))
    assert per.empty and per.missing == 1 and per.confusion.empty


# --- the alarm -------------------------------------------------------------------------------------------------


def _searched(final_vals: list[float], n_val: int = 200) -> list[dict]:
    trial = fx.make_row(strategy="full-fine-tune", curve=[0.6, 0.8], role="search", trial=0, n_val=n_val, tag="t")
    finals = [fx.make_row(strategy="full-fine-tune", seed=s, curve=[0.2, v], role="final", n_val=n_val,
                          selected_from=trial["cell"]) for s, v in enumerate(final_vals)]
    return [trial] + finals


def test_alarm_on_a_collapsed_final_and_not_on_a_normal_one():
    normal = alarm.alarm_table(tables.normalize(fx.frame(_searched([0.79, 0.77, 0.81]))))
    assert len(normal) == 1 and not normal["alarm"].item()
    assert normal["trial_val"].item() == pytest.approx(0.8) and normal["n"].item() == 3
    collapsed = alarm.alarm_table(tables.normalize(fx.frame(_searched([0.79, 0.35, 0.81]))))
    assert collapsed["alarm"].item() and collapsed["worst_seed"].item() == 1
    assert collapsed["gap"].item() == pytest.approx(0.45)


def test_alarm_margin_is_binomial_with_a_five_point_floor():
    assert alarm.margin(0.8, 200, 200) == pytest.approx(3 * np.sqrt(0.8 * 0.2 * 2 / 200))  # 0.12
    assert alarm.margin(0.99, 5000, 5000) == alarm.FLOOR
    assert alarm.margin(0.8, float("nan"), 200) == alarm.FLOOR
    # 0.8 → 0.72 on 200 validation examples is within noise; on 20 000 it is not
    assert not alarm.alarm_table(tables.normalize(fx.frame(_searched([0.72]))))["alarm"].item()
    assert alarm.alarm_table(tables.normalize(fx.frame(_searched([0.72], n_val=20_000))))["alarm"].item()


def test_unsearched_finals_are_not_checked():
    assert alarm.alarm_table(tables.normalize(fx.frame([fx.make_row(curve=[0.5])]))).empty


# --- the page -----------------------------------------------------------------------------------------------


def _rows() -> list[dict]:
    rows = []
    for seed in range(2):
        rows.append(fx.make_row(strategy="from-scratch", seed=seed, curve=[0.3, 0.5]))
        rows.append(fx.make_row(strategy="full-fine-tune", seed=seed, curve=[0.6, 0.8]))
    return rows


def test_report_with_predictions_has_confusion_calibration_and_csv(tmp_path):
    rows = _rows() + _searched([0.79, 0.3])
    fx.write_results(tmp_path, rows)
    assert write_for_rows(tmp_path, rows, overconfidence=0.15) == len(rows)
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "Calibration — t" in page and "Confusion matrices — t · b" in page and "Reliability diagrams" in page
    assert "No per-example predictions" not in page
    assert "Final runs far below their search trial" in page and 'class="neg"' in page
    for name in ("confusion", "calibration", "reliability", "search_vs_final"):
        table = pd.read_csv(tmp_path / f"report_{name}.csv")
        assert len(table)
    calib = pd.read_csv(tmp_path / "report_calibration.csv")
    assert (calib["ece"] > 0.05).all() and set(calib["n"]) >= {600}  # over-confident by 0.15, 2 seeds × 300


def test_report_without_predictions_says_why_in_one_sentence(tmp_path):
    fx.write_results(tmp_path, _rows())
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "No per-example predictions are stored with these results" in page
    assert not (tmp_path / "report_confusion.csv").exists()


def test_hostile_class_names_are_escaped(tmp_path):
    rows = _rows()
    fx.write_results(tmp_path, rows)
    write_for_rows(tmp_path, rows, classes=(fx.HOSTILE, "b & c", '"q"'))
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert fx.HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    confusion = pd.read_csv(tmp_path / "report_confusion.csv")
    assert fx.HOSTILE in set(confusion["true_class"])  # the CSV keeps the name as it is


def test_many_classes_get_a_table_of_confused_pairs_instead_of_a_heatmap(tmp_path):
    rows = _rows()
    fx.write_results(tmp_path, rows)
    write_for_rows(tmp_path, rows, classes=tuple(f"class {i}" for i in range(20)))
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert "Most confused class pairs — t" in page and "Confusion matrices — t" not in page
