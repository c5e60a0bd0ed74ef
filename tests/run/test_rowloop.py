"""The row-recording loop ``run`` and ``estimate`` share: which items need a row, and what recording one does."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.infra.claims import Claims, claims_dir
from bench.results import CellRecord, read_cell_rows
from bench.run.progress import RunProgress
from bench.run.rowloop import pending, record_rows


@dataclass(frozen=True)
class Item:
    key: str

    def label(self) -> str:
        return f"item {self.key}"


@dataclass
class Counts:
    ran: int = 0
    failed: int = 0


def test_pending_skips_recorded_rows_retries_errors_when_asked_and_force_takes_all():
    items = [Item("new"), Item("ok"), Item("err")]
    done = {"ok": {"status": "ok"}, "err": {"status": "error"}}
    assert pending(items, done) == [Item("new")]
    assert pending(items, done, retry_errors=True) == [Item("new"), Item("err")]
    assert pending(items, done, force=True) == items


def test_record_rows_writes_rows_and_tracebacks_counts_releases_claims_and_prints_one_line_each(tmp_path, capsys):
    ok, bad = Item("a"), Item("b")
    finished = [(ok, CellRecord({"cell": "a", "status": "ok", "params": {}, "score": 1.0})),
                (bad, CellRecord({"cell": "b", "status": "error", "params": {}, "error": "boom"}, "Traceback: boom"))]
    done: dict = {}
    counts = Counts()
    with Claims(tmp_path) as claims, RunProgress(2, enabled=False) as progress:
        assert claims.take("a") and claims.take("b")
        record_rows(iter(finished), tmp_path, done, counts, progress,
                    lambda row: row.get("error") or f"score {row['score']}", claims)
        assert not claims.held and not list(claims_dir(tmp_path).iterdir())
    assert (counts.ran, counts.failed) == (2, 1)
    assert set(done) == {"a", "b"} and set(read_cell_rows(tmp_path)) == {"a", "b"}
    assert json.loads((tmp_path / "cells" / "b.json").read_text())["error"] == "boom"
    assert (tmp_path / "logs" / "b.txt").read_text() == "Traceback: boom"
    assert not (tmp_path / "logs" / "a.txt").exists()
    assert (tmp_path / "results.parquet").is_file()  # the tables are rebuilt as rows come (at most once a second)
    err = capsys.readouterr().err
    assert "[1/2] ok      item a: score 1.0" in err and "[2/2] error   item b: boom" in err
