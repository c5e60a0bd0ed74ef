"""Resume: a rerun skips recorded cells; --force recomputes; damaged cell files are recomputed; failures isolated."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench import results
from bench.core.errors import UserError
from bench.runner import run_suite
from bench.plan.suite import expand, parse_suite
from bench.core.strategy import Strategy
from tests.helpers.tiny import register

SUITE = {"name": "resume", "tasks": ["digits"], "backbones": ["test_efficientnet"], "strategies": ["from-scratch"],
         "seeds": [0, 1], "fractions": [0.1, 0.2],
         "params": {"image_size": 16, "epochs": 1, "batch_size": 32, "min_steps_per_epoch": 1, "val_size": 50,
                    "test_limit": 60}}


def test_rerun_resumes_and_force_recomputes(tmp_path):
    suite = parse_suite(SUITE)
    first = run_suite(suite, tmp_path, only=["seed=0"])
    assert (first.ran, first.skipped_done) == (2, 0)
    stamps = {p.name: p.stat().st_mtime_ns for p in results.cells_dir(tmp_path).glob("*.json")}
    second = run_suite(suite, tmp_path)
    assert (second.ran, second.skipped_done, second.total) == (2, 2, 4)  # only the missing seed ran
    for name, stamp in stamps.items():
        assert (results.cells_dir(tmp_path) / name).stat().st_mtime_ns == stamp
    frame = pd.read_parquet(tmp_path / "results.parquet")
    assert len(frame) == 4 and set(frame["seed"]) == {0, 1} and (frame["status"] == "ok").all()
    assert len(pd.read_csv(tmp_path / "results.csv")) == 4
    assert json.loads((tmp_path / "plan.json").read_text())["cells"] == [c.key for c in expand(suite)]
    third = run_suite(suite, tmp_path, force=True, only=["seed=1", "fraction=0.1"])
    assert third.ran == 1


def test_rows_carry_provenance(tmp_path):
    run_suite(parse_suite(SUITE), tmp_path, only=["seed=0", "fraction=0.1"])
    row = results.load_results(tmp_path).iloc[0]
    for col in ("cell", "params", "curve", "versions", "device", "git_sha", "data_source", "train_time_s",
                "wall_time_s", "throughput", "peak_mem_mb", "trainable_params"):
        assert row[col] is not None and row[col] == row[col], col
    assert json.loads(row["versions"])["torch"]
    assert row["p_epochs"] == 1 and row["data_source"].startswith("package:scikit-learn")


def test_damaged_cell_file_is_recomputed(tmp_path, capsys):
    suite = parse_suite(SUITE)
    run_suite(suite, tmp_path, only=["seed=0"])
    victim, other = sorted(results.cells_dir(tmp_path).glob("*.json"))
    victim.write_text('{"cell": "trunc')  # as left by a crash mid-write of a non-atomic writer
    stamp = other.stat().st_mtime_ns
    summary = run_suite(suite, tmp_path, only=["seed=0"])
    assert summary.ran == 1 and other.stat().st_mtime_ns == stamp
    assert "damaged" in capsys.readouterr().err
    assert json.loads(victim.read_text())["status"] == "ok"


def test_corrupted_results_file_is_one_line(tmp_path):
    bad = tmp_path / "results.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match="not a readable results file"):
        results.load_results(bad)


class Exploding(Strategy):
    name = "exploding"
    description = "raises inside the plugin (tests only)"

    def run(self, ctx):
        raise RuntimeError("plugin bug")


def test_failing_cell_is_an_error_row_and_the_matrix_goes_on(tmp_path, monkeypatch):
    register(monkeypatch, "strategy", Exploding())
    suite = parse_suite(SUITE | {"strategies": ["exploding", "from-scratch"], "seeds": [0], "fractions": [0.1]})
    summary = run_suite(suite, tmp_path)
    assert (summary.ran, summary.failed) == (2, 1)
    frame = results.load_results(tmp_path).set_index("strategy")
    assert frame.loc["exploding", "status"] == "error" and "RuntimeError: plugin bug" in frame.loc["exploding", "error"]
    assert frame.loc["from-scratch", "status"] == "ok"
    assert (tmp_path / "logs" / f"{frame.loc['exploding', 'cell']}.txt").read_text().count("plugin bug")
    again = run_suite(suite, tmp_path)
    assert again.ran == 0  # error rows count as recorded ...
    assert run_suite(suite, tmp_path, retry_errors=True).ran == 1  # ... unless asked to retry them
