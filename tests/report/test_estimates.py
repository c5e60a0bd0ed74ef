"""The report's transferability-estimates section on hand-made rows: scores, τ with < 3 and >= 3 backbones."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from report import estimates, render_html, tables
from tests.helpers.fixtures_results import HOSTILE, frame, make_row


def est_row(task: str, backbone: str, logme: float, random: bool = False, **scores) -> dict:
    name = backbone + ("@random" if random else "")
    row = make_row(task=task, backbone=name, strategy="estimate", tag=f"est-{random}", role="estimate",
                   base_backbone=backbone, random_init=random, logme=logme, h_score=scores.pop("h_score", logme + 1),
                   nce=scores.pop("nce", None), leep=scores.pop("leep", None), n_estimate_samples=500,
                   wall_time_s=2.0, **scores)
    row.pop("accuracy", None)
    return row


def trained(task: str, backbone: str, accuracy: float, strategy: str = "feature-extraction") -> list[dict]:
    return [make_row(task=task, backbone=backbone, strategy=strategy, seed=s, accuracy=accuracy + 0.01 * s,
                     curve=[accuracy]) for s in range(2)]


def suite_rows(backbones: dict[str, tuple[float, float]], task: str = "t") -> list[dict]:
    """Per backbone (logme, measured accuracy), plus each one's random anchor."""
    rows = []
    for name, (logme, acc) in backbones.items():
        rows += [est_row(task, name, logme, nce=-1.0 + logme / 10, leep=-1.5 + logme / 10),
                 est_row(task, name, -3.0, random=True, nce=-2.0, leep=-2.5)]
        rows += trained(task, name, acc) + trained(task, name, acc - 0.1, "full-fine-tune")
    return rows


def test_estimate_rows_stay_out_of_the_other_tables():
    rows = suite_rows({"a": (0.5, 0.8), "b": (0.2, 0.6)})
    data = tables.compute(frame(rows))
    assert "estimate" not in set(data.leaderboard["strategy"]) and "estimate" not in set(data.frame["strategy"])
    assert data.summary["recorded"] == 8  # only the trained rows count as recorded cells
    assert len(data.estimates.scores) == 4
    assert {"estimates", "estimate_correlations"} <= set(data.exports())


def test_fewer_than_three_backbones_gives_no_tau():
    rows = suite_rows({"a": (0.5, 0.8), "b": (0.2, 0.6)})
    est = estimates.compute(frame(rows))
    assert set(est.correlations["strategy"]) == {"feature-extraction", "full-fine-tune"}
    assert est.correlations["tau"].isna().all() and est.correlations["weighted_tau"].isna().all()
    assert (est.correlations["note"] == estimates.FEW_BACKBONES).all()
    html = render_html(frame(rows))
    assert "Transferability estimates" in html and 'href="#estimates"' in html
    assert "τ is not meaningful with fewer than 3 backbones" in html
    assert "a@random" in html and "random init: the lower anchor" in html


def test_three_backbones_give_kendall_and_weighted_tau():
    measured = {"a": (0.5, 0.8), "b": (0.2, 0.6), "c": (0.9, 0.7), "d": (0.1, 0.5)}
    rows = suite_rows(measured)
    est = estimates.compute(frame(rows))
    fe = est.correlations[(est.correlations["strategy"] == "feature-extraction")].set_index("estimator")
    assert set(fe.index) == {"logme", "h_score", "nce", "leep"}
    logme = [v[0] for v in measured.values()]
    acc = [v[1] + 0.005 for v in measured.values()]  # mean over the two seeds
    assert fe.loc["logme", "n_backbones"] == 4 and fe.loc["logme", "note"] == ""
    assert fe.loc["logme", "tau"] == pytest.approx(stats.kendalltau(logme, acc).statistic)
    assert fe.loc["logme", "weighted_tau"] == pytest.approx(stats.weightedtau(logme, acc).statistic)
    assert fe.loc["logme", "tau"] == pytest.approx(2 / 3)  # 5 of 6 pairs agree: (5 - 1) / 6
    html = render_html(frame(rows))
    assert "Do the estimates rank the backbones as training does?" in html and "0.67" in html
    assert "not meaningful" not in html


def test_anchor_left_out_of_tau_and_flagged_when_a_pretrained_score_is_below_it():
    rows = suite_rows({"a": (0.5, 0.8), "b": (-4.0, 0.6), "c": (0.9, 0.7)})
    est = estimates.compute(frame(rows))
    assert (est.correlations["n_backbones"] == 3).all()  # the @random rows have no trained results
    assert "below its random-init anchor" in render_html(frame(rows))


def test_estimates_without_trained_results_and_errors_are_shown():
    rows = [est_row("t", "a", 0.3), est_row("t", "a", -1.0, random=True),
            {**est_row("t", "b", 0.0), "status": "error", "error": "UserError: no weights", "logme": None}]
    html = render_html(frame(rows))
    assert "No trained results (feature-extraction, full-fine-tune) for these tasks yet" in html
    assert "UserError: no weights" in html
    assert estimates.compute(frame(rows)).correlations.empty


def test_no_estimates_no_section():
    html = render_html(frame(trained("t", "a", 0.8)))
    assert 'id="estimates"' not in html and 'href="#estimates"' not in html


def test_hostile_names_are_escaped_in_the_section():
    rows = suite_rows({HOSTILE: (0.5, 0.8), "b": (0.2, 0.6), "c": (0.1, 0.4)}, task=HOSTILE)
    html = render_html(frame(rows))
    assert HOSTILE not in html and "&lt;script&gt;" in html.split('id="estimates"')[1]


def test_final_only_is_the_verdict_rule():
    from report.verdict import final_rows

    rows = pd.DataFrame({"role": [None, "final", "estimate", "pretrain"], "status": ["ok"] * 4,
                         "task": "t", "backbone": "b", "strategy": "s"})
    assert len(estimates.final_only(rows)) == len(final_rows(rows)) == 2
    assert len(estimates.final_only(rows.drop(columns="role"))) == 4
    assert math.isnan(estimates._taus([1.0, 2.0], [3.0, 4.0])[0])
