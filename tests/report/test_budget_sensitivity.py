"""Final-only report numbers, the budget table and the hyperparameter-sensitivity figure, on hand-made rows."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import report
from report import budget, sensitivity, tables, verdict
from report.sections import figures
from report.sections.sensitivity import sensitivity_plots
from tests.helpers import fixtures_results as fx


def search_row(strategy: str, trial: int, lr: float, val: float, seed: int = 0, **extra) -> dict:
    """A search trial: role 'search', its parameters as JSON and spread into p_ columns."""
    params = {"lr": lr, "weight_decay": 0.01, "batch_size": 32, "min_steps_per_epoch": 10}
    return fx.make_row(strategy=strategy, seed=seed, curve=[val - 0.1, val], accuracy=0.99, tag=f"s{trial}",
                       role="search", trial=trial, params=json.dumps(params), p_lr=lr, p_weight_decay=0.01,
                       n_train=320, **extra)


def rows_with_search() -> list[dict]:
    rows = fx.issue_example(seeds=3)  # final rows (no role column value: final by default)
    for r in rows:
        r.update(role="final", n_train=320, params=json.dumps({"batch_size": 32}))
    for trial, lr in enumerate([1e-4, 1e-3, 1e-2, 1e-1]):
        rows.append(search_row("full-fine-tune", trial, lr, 0.5 + 0.1 * (trial == 1)))
        rows.append(search_row("from-scratch", trial, lr, 0.4 + 0.05 * trial, wall_time_s=7.0))
    return rows


# --- 1. final rows only --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["final", "", None])
def test_is_final_treats_missing_and_empty_role_as_final(role):
    frame = pd.DataFrame({"role": [role, "search", "pretrain", "estimate"]})
    assert tables.is_final(frame).tolist() == [True, False, False, False]
    assert tables.is_final(frame.drop(columns="role")).all()


def test_search_row_with_huge_accuracy_changes_no_leaderboard():
    finals = fx.issue_example(seeds=3)
    cheat = fx.make_row(strategy="from-scratch", curve=[0.99, 1.0], accuracy=1.0, tag="x", role="search", trial=7,
                        wall_time_s=1e6)
    before, after = tables.compute(fx.frame(finals)), tables.compute(fx.frame(finals + [cheat]))
    pd.testing.assert_frame_equal(before.leaderboard, after.leaderboard)
    pd.testing.assert_frame_equal(before.transfer, after.transfer)
    pd.testing.assert_frame_equal(before.curves, after.curves)
    assert after.summary["recorded"] == before.summary["recorded"] + 1  # ...but it is a recorded cell
    scratch = after.leaderboard[after.leaderboard["strategy"] == "from-scratch"].iloc[0]
    assert scratch["accuracy_mean"] == pytest.approx(0.7) and scratch["n"] == 3
    # the verdict reads the same rows through the same helper
    assert verdict.final_rows(fx.frame(finals + [cheat])).shape[0] == len(finals)


def test_page_figures_ignore_search_rows():
    finals = fx.issue_example(seeds=2)
    cheat = fx.make_row(strategy="from-scratch", curve=[0.99], accuracy=1.0, tag="x", role="search", trial=1)
    with_cheat = tables.compute(fx.frame(finals + [cheat]))
    assert "0.990" not in " ".join(p.alt for p in figures.all_figures(with_cheat.frame, with_cheat.leaderboard,
                                                                         with_cheat.curves))


# --- 2. budget -----------------------------------------------------------------------------------------------


def test_budget_table_counts_trials_steps_and_time():
    table = tables.compute(fx.frame(rows_with_search())).budget
    ft = table[table["strategy"] == "full-fine-tune"].iloc[0]
    assert ft["search_trials"] == 4 and ft["search_runs"] == 4 and ft["final_runs"] == 3
    # steps inferred: epochs_run (2) × max(320 // 32, 10) = 20 per search trial; finals run 3 epochs
    assert ft["search_steps"] == 4 * 20 and ft["final_steps"] == 3 * 3 * 10 and ft["steps_source"] == "inferred"
    assert ft["search_wall_time_s"] == pytest.approx(4 * 2.5) and ft["final_wall_time_s"] == pytest.approx(3 * 9.5)
    assert ft["total_wall_time_s"] == pytest.approx(10 + 28.5) and ft["note"] == ""
    scratch = table[table["strategy"] == "from-scratch"].iloc[0]
    assert scratch["search_wall_time_s"] == pytest.approx(28.0)


def test_budget_prefers_recorded_steps_and_labels_unsearched_strategies():
    rows = rows_with_search()
    for r in rows:
        r["budget_steps"] = 123
    rows += [fx.make_row(strategy="zero-shot", seed=s, accuracy=0.3, role="final") for s in range(2)]
    table = budget.budget_table(tables.normalize(fx.frame(rows)))
    assert (table.loc[table["strategy"] != "zero-shot", "steps_source"] == "recorded").all()
    ft = table[table["strategy"] == "full-fine-tune"].iloc[0]
    assert ft["search_steps"] == 4 * 123 and ft["final_steps"] == 3 * 123
    zs = table[table["strategy"] == "zero-shot"].iloc[0]
    assert zs["note"] == budget.NOT_SEARCHED and zs["search_trials"] == 0


def test_budget_without_any_search_says_single_configuration_and_epochs():
    table = tables.compute(fx.frame(fx.issue_example(seeds=2))).budget  # no n_train, no params: epochs only
    assert set(table["note"]) == {budget.SINGLE}
    assert (table["steps_source"] == "epochs").all() and (table["final_epochs"] == 6).all()
    page = report.render_html(fx.frame(fx.issue_example(seeds=2)))
    assert 'id="budget"' in page and budget.SINGLE in page and "No hyperparameter search" in page


def test_budget_on_empty_results():
    assert budget.budget_table(tables.normalize(fx.frame([]))).empty


# --- 3. sensitivity ------------------------------------------------------------------------------------------


def test_sensitivity_figure_with_search_rows():
    norm = tables.normalize(fx.frame(rows_with_search()))
    rows, names = sensitivity.searched(norm)
    assert names == ["lr"]  # weight_decay and batch_size did not vary
    plots = sensitivity_plots(norm)
    assert len(plots) == 1 and plots[0].src.startswith("data:image/png;base64,")
    assert "lr" in plots[0].alt and "full-fine-tune best at 0.001 (0.600)" in plots[0].alt
    page = report.render_html(fx.frame(rows_with_search()))
    assert "Hyperparameter sensitivity — t" in page


def test_sensitivity_figure_with_a_categorical_parameter():
    rows = [search_row("partial-freeze", t, 1e-3, 0.5 + 0.01 * t, p_freeze=name) for t, name in
            enumerate(["stem", "half", "all-but-head"])]
    plots = sensitivity_plots(tables.normalize(fx.frame(rows)))
    assert len(plots) == 1 and "freeze" in plots[0].alt


def test_sensitivity_figure_without_search_rows():
    assert sensitivity_plots(tables.normalize(fx.frame(fx.issue_example(seeds=2)))) == []
    assert sensitivity_plots(tables.normalize(fx.frame([]))) == []


# --- 4. epoch 0 ----------------------------------------------------------------------------------------------


def epoch0_row(strategy: str, seed: int, values: list[float], **extra) -> dict:
    """A row whose curve starts with the epoch-0 point (the score before any training)."""
    row = fx.make_row(strategy=strategy, seed=seed, curve=values[1:], **extra)
    points = [{"epoch": e, "val_accuracy": v, "time_s": 0.5 + e, "train_loss": None} for e, v in enumerate(values)]
    row["curve"] = json.dumps(points)
    return row


def test_epoch0_start_slope_and_area():
    rows = [epoch0_row("from-scratch", s, [0.1, 0.3, 0.5, 0.7]) for s in range(2)]
    rows += [epoch0_row("full-fine-tune", s, [0.4, 0.6, 0.7, 0.7]) for s in range(2)]
    metrics = tables.transfer_metrics(tables.normalize(fx.frame(rows)))
    ft = metrics[metrics["strategy"] == "full-fine-tune"].iloc[0]
    scratch = metrics[metrics["strategy"] == "from-scratch"].iloc[0]
    # start is read after epoch 1, not at epoch 0 (chance for zero-initialised heads); slope from there to epoch 3
    assert scratch["start_mean"] == pytest.approx(0.3) and ft["start_delta"] == pytest.approx(0.3)
    assert scratch["slope_mean"] == pytest.approx((0.7 - 0.3) / 2)  # epochs 1..3
    assert scratch["aulc_mean"] == pytest.approx(0.4)  # mean over epochs 0..3
    assert scratch["asymptote_mean"] == pytest.approx(0.7)  # best_epoch 3 is curve[3] with epoch 0 first


def test_epoch0_curves_in_learning_curve_table_and_figure():
    rows = [epoch0_row("from-scratch", s, [0.1, 0.3, 0.5]) for s in range(2)]
    rows.append(epoch0_row("zero-shot", 0, [0.25], accuracy=0.25))  # zero-shot is its own epoch 0
    data = tables.compute(fx.frame(rows))
    assert sorted(data.curves.loc[data.curves["strategy"] == "from-scratch", "epoch"]) == [0, 1, 2]
    plots = figures.learning_curves(data.frame, data.curves, figures.strategy_colors(list(data.frame["strategy"])))
    assert len(plots) == 1 and "zero-shot" not in plots[0].alt.split("Final mean accuracy")[1]  # a level, no line
    assert data.frame.loc[data.frame["strategy"] == "zero-shot", "val_accuracy"].iloc[0] == pytest.approx(0.25)


def test_old_curves_without_epoch0_keep_their_metrics():
    from bench.results import seedstats as stats

    assert stats.slope([0.5, 0.6, 0.7]) == pytest.approx(0.1)
    assert stats.slope([0.5, 0.6, 0.7, 0.9], start=0) == pytest.approx((0.9 - 0.5) / 3)
    assert stats.asymptote([0.5, 0.6, 0.7], 2) == pytest.approx(0.6)
    assert stats.asymptote([0.5, 0.6, 0.7], 2, start=0) == pytest.approx(0.7)
    assert stats.area_under_curve([0.2, 0.4], horizon=4) == pytest.approx((0.2 + 0.4 * 3) / 4)
    assert stats.area_under_curve([0.0, 0.2, 0.4], horizon=4, start=0) == pytest.approx((0 + 0.2 + 0.4 * 3) / 5)
    assert math.isnan(stats.slope([0.3], start=0))
    metrics = tables.transfer_metrics(tables.normalize(fx.frame(fx.issue_example(seeds=3))))
    ft = metrics[metrics["strategy"] == "full-fine-tune"].iloc[0]
    assert ft["start_delta"] == pytest.approx(0.2) and ft["slope_delta"] == pytest.approx(-0.1)
    assert ft["aulc_delta"] == pytest.approx(0.1)
