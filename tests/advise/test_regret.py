"""The regret computation of bench/tools/advise_regret.py on a synthetic matrix frame (no run)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.tools.advise_regret import matrix_time_s, regret_table


def _row(strategy: str, seed: int, score: float, role: str = "final", fraction: float = 0.01, **extra) -> dict:
    return {"cell": f"{strategy}-{seed}-{role}-{fraction}", "task": "t", "backbone": "b", "fraction": fraction,
            "strategy": strategy, "seed": seed, "role": role, "status": "ok", "main_metric": "accuracy",
            "accuracy": score, "wall_time_s": 10.0, "selected_from": None, "started_at": f"{strategy}{seed}{role}",
            **extra}


def _frame() -> pd.DataFrame:
    return pd.DataFrame([
        _row("probe", 0, 0.80), _row("probe", 1, 0.82),
        _row("fine-tune", 0, 0.85), _row("fine-tune", 1, 0.87),  # best: mean 0.86
        _row("fine-tune", 0, 0.99, role="search"),  # a trial: never a final score
        _row("scratch", 0, 0.99, status="error"), _row("scratch", 1, 0.40),  # an error row does not count
        _row("probe", 0, 0.50, fraction=0.02), _row("fine-tune", 0, 0.70, fraction=0.02),
    ])


def test_regret_is_best_minus_pick_in_points_on_final_ok_rows():
    table = regret_table(_frame(), {("t", "b", 0.01): "probe", ("t", "b", 0.02): "fine-tune"})
    first = table.set_index("fraction").loc[0.01]
    assert first["best"] == "fine-tune"
    assert first["best_score"] == pytest.approx(0.86)
    assert first["pick_score"] == pytest.approx(0.81)
    assert first["regret_points"] == pytest.approx(5.0)
    assert table.set_index("fraction").loc[0.02, "regret_points"] == pytest.approx(0.0)


def test_a_pick_the_matrix_lacks_is_reported_as_nan_and_groups_without_a_pick_are_left_out():
    table = regret_table(_frame(), {("t", "b", 0.01): "zero-shot"})
    assert len(table) == 1 and math.isnan(table["regret_points"].iloc[0])


def test_matrix_time_counts_a_final_copied_from_its_trial_once():
    trial = _row("fine-tune", 0, 0.85, role="search", started_at="same")
    copy = _row("fine-tune", 0, 0.85, selected_from=trial["cell"], started_at="same")
    rerun = _row("fine-tune", 1, 0.86, selected_from=trial["cell"])
    assert matrix_time_s(pd.DataFrame([trial, copy, rerun])) == pytest.approx(20.0)
