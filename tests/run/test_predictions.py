"""Stored predictions: every finished cell's per-example test and validation predictions, written before its row
by every executor, on one index per task, kept on resume, replaced by --force, copied with a reused trial, and
absent for error rows. (Each strategy's own predictions are checked by the contract tests in tests/strategies, and
every executor's by tests/execution/test_executors.py.)"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from bench import results
from bench.core.strategy import Strategy
from bench.results.predictions import CellPredictions, SplitPredictions, predictions_path, read_predictions
from bench.results.schema import CellRecord
from bench.run.taskdata import load_task_data
from bench.plan.suite import parse_suite
from bench.runner import run_suite
from tests.helpers.tiny import TinyShapes, register, tiny_shapes_backbone

TINY = {"image_size": 16, "epochs": 1, "batch_size": 32, "eval_batch_size": 64, "min_steps_per_epoch": 2,
        "val_size": 30, "test_limit": 45}
DIGITS = {"image_size": 16, "epochs": 1, "batch_size": 32, "min_steps_per_epoch": 1, "val_size": 50,
          "test_limit": 60}


@pytest.fixture()
def tiny(monkeypatch, tmp_path):
    return tiny_shapes_backbone(monkeypatch, tmp_path)


def ok_rows(path) -> dict[str, dict]:
    return {k: r for k, r in results.read_cell_rows(path).items() if r["status"] == "ok"}


def check_matches_row(path, row: dict) -> CellPredictions:
    """The cell's predictions file exists and is the evidence of its row's scores."""
    preds = read_predictions(path, row["cell"])
    assert preds is not None, f"{row['strategy']} seed {row['seed']}: no predictions file"
    assert len(preds.test.ids) == row["n_test"]
    assert abs(preds.test.correct.mean() - row["accuracy"]) < 1e-9
    assert np.allclose(preds.test.proba.astype(np.float32).sum(axis=1), 1.0, atol=1e-2)
    if preds.val is not None:
        assert abs(preds.val.correct.mean() - row["val_accuracy"]) < 1e-9
    return preds


def stamps(path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (path / "predictions").glob("*.npz")}


def test_every_cell_of_a_task_shares_one_test_index_and_resume_keeps_the_files(tiny, tmp_path):
    suite = parse_suite({"name": "p", "tasks": ["tiny-shapes"], "backbones": [tiny],
                         "strategies": ["from-scratch", "feature-extraction", "zero-shot"], "seeds": [0, 1],
                         "fractions": [0.5], "params": TINY})
    out = tmp_path / "out"
    run_suite(suite, out)
    rows = ok_rows(out)
    assert len(rows) == 6
    data = load_task_data("tiny-shapes")
    test_ids, val_ids = set(), {0: set(), 1: set()}
    for row in rows.values():
        preds = check_matches_row(out, row)
        assert preds.classes == TinyShapes.metadata.classes
        # ids index the official splits: their labels are the official labels (test_limit kept 45 of 90)
        assert np.array_equal(preds.test.y, data.test.y.numpy()[preds.test.ids])
        assert np.array_equal(preds.val.y, data.train.y.numpy()[preds.val.ids])
        test_ids.add(preds.test.ids.tobytes())
        val_ids[row["seed"]].add(preds.val.ids.tobytes())
    assert len(test_ids) == 1  # every strategy and seed is scored on the same examples: pairable
    assert len(val_ids[0]) == len(val_ids[1]) == 1 and val_ids[0] != val_ids[1]  # validation is cut per seed
    frame = pd.read_parquet(out / "results.parquet")
    assert not any("pred" in c or "proba" in c for c in frame.columns)  # the table stays small

    before = stamps(out)
    assert len(before) == 6
    assert run_suite(suite, out).ran == 0 and stamps(out) == before  # resume rewrites nothing
    # A row recorded before predictions were kept is still a finished cell: not recomputed.
    (old,) = [k for k, r in rows.items() if r["strategy"] == "zero-shot" and r["seed"] == 1]
    predictions_path(out, old).unlink()
    assert run_suite(suite, out).ran == 0 and not predictions_path(out, old).exists()
    summary = run_suite(suite, out, force=True, only=["strategy=from-scratch", "seed=0"])
    assert summary.ran == 1
    after = stamps(out)
    (forced,) = [k for k, r in rows.items() if r["strategy"] == "from-scratch" and r["seed"] == 0]
    assert after[f"{forced}.npz"] != before[f"{forced}.npz"]  # --force rewrote it
    assert all(after[name] == stamp for name, stamp in before.items() if name not in (f"{forced}.npz", f"{old}.npz"))
    check_matches_row(out, ok_rows(out)[forced])


class Explodes(Strategy):
    name = "explodes"
    description = "test-only: fails in the middle of its cell"
    parameters = {}

    def run(self, ctx):
        raise RuntimeError("boom")


def test_error_rows_have_no_predictions(tiny, tmp_path, monkeypatch):
    register(monkeypatch, "strategy", Explodes())
    suite = parse_suite({"name": "p", "tasks": ["tiny-shapes"], "backbones": [tiny], "strategies": ["explodes"],
                         "seeds": [0], "params": TINY})
    run_suite(suite, tmp_path)
    (row,) = results.read_cell_rows(tmp_path).values()
    assert row["status"] == "error" and not (tmp_path / "predictions").exists()
    assert (tmp_path / "logs" / f"{row['cell']}.txt").is_file()


def test_a_rerun_that_fails_removes_the_cells_old_predictions(tmp_path):
    """--force on a cell that now fails: the old file would describe a row that is no longer recorded."""
    split = SplitPredictions.from_proba([0, 1], [0, 1], [[0.9, 0.1], [0.2, 0.8]])
    row = {"cell": "k", "status": "ok", "accuracy": 1.0}
    results.record_cell(tmp_path, CellRecord(row, None, CellPredictions(split, None, ("a", "b"))))
    assert read_predictions(tmp_path, "k").test.correct.all()
    results.record_cell(tmp_path, CellRecord(dict(row, status="error", error="x"), "Traceback ...", None))
    assert not predictions_path(tmp_path, "k").exists()
    assert results.read_cell_rows(tmp_path)["k"]["status"] == "error"
    # An error record that still carries predictions (it should not) does not get a file either.
    results.record_cell(tmp_path, CellRecord(dict(row, status="error"), None, CellPredictions(split)))
    assert not predictions_path(tmp_path, "k").exists()


def test_reused_first_seed_final_has_its_trials_predictions(tmp_path):
    suite = parse_suite({"name": "s", "tasks": ["digits"], "backbones": ["test_efficientnet"],
                         "strategies": ["from-scratch"], "seeds": [0, 1], "fractions": [0.2], "params": DIGITS,
                         "search": {"sampler": "grid", "trials": 2, "space": {"lr": [0.0003, 0.01]}}})
    summary = run_suite(suite, tmp_path)
    assert summary.ran == 3  # two trials, the seed-1 final; the seed-0 final reuses its trial's row
    rows = ok_rows(tmp_path)
    assert len(rows) == 4
    for row in rows.values():  # trials store predictions too
        check_matches_row(tmp_path, row)
    finals = {r["seed"]: r for r in rows.values() if r["role"] == "final"}
    reused = finals[0]
    assert predictions_path(tmp_path, reused["cell"]).read_bytes() == \
        predictions_path(tmp_path, reused["selected_from"]).read_bytes()
    assert predictions_path(tmp_path, finals[1]["cell"]).read_bytes() != \
        predictions_path(tmp_path, reused["cell"]).read_bytes()
    assert json.loads(reused["params"]) == json.loads(rows[reused["selected_from"]]["params"])


def test_predictions_leave_no_arrays_in_the_row(tiny):
    """run_cell hands the predictions beside the row: the row holds no arrays."""
    from bench.run.cell import run_cell
    from bench.plan.suite import expand

    suite = parse_suite({"tasks": ["tiny-shapes"], "backbones": [tiny], "strategies": ["zero-shot"], "seeds": [0],
                         "params": TINY})
    (cell,) = expand(suite)
    record = run_cell(cell, "t", torch.device("cpu"))
    assert record.predictions is not None and "predictions" not in record.row
    assert not any(isinstance(v, (np.ndarray, torch.Tensor)) for v in record.row.values())


def test_a_quick_suite_cells_predictions_stay_small(tmp_path):
    """Fashion-MNIST in bench/suites/quick.yaml: 500 test and 300 validation examples of 10 classes (~20 kB)."""
    from bench.run.context import split_predictions
    from bench.run.train import scores

    rng = np.random.default_rng(0)

    def split(n: int) -> SplitPredictions:
        y = torch.from_numpy(rng.integers(0, 10, n))
        logits = torch.randn(n, 10) * 3 + 6 * torch.nn.functional.one_hot(y, 10)
        return split_predictions(np.sort(rng.choice(10_000, n, replace=False)), y, scores(logits, y))

    preds = CellPredictions(split(500), split(300), tuple(str(i) for i in range(10)))
    results.record_cell(tmp_path, CellRecord({"cell": "k", "status": "ok"}, None, preds))
    assert predictions_path(tmp_path, "k").stat().st_size < 32_000
    back = read_predictions(tmp_path, "k")
    assert np.array_equal(back.test.pred, preds.test.pred) and np.array_equal(back.val.ids, preds.val.ids)
