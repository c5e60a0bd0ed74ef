"""One results schema, one writer, one reader.

Layout of a results directory::

    RESULTS_DIR/
      cells/<cell key>.json   one file per finished cell, written atomically (the source of truth)
      predictions/<key>.npz   what a finished cell predicted per test/validation example (bench.results.predictions),
                              written before its row; none for error and skipped rows
      logs/<cell key>.txt     the traceback of a failed cell
      results.parquet         every row, rebuilt from cells/ after each cell (for tools)
      results.csv             the same rows (for people)
      suite.yaml              the suite that produced them

Per-cell files make resume and concurrent writers safe: a cell is either fully recorded or absent, and two
runners on one directory never overwrite each other's rows. A damaged cell file (as left by a crash) is reported
in one line and its cell recomputed; nothing else is thrown away.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

try:
    import fcntl
except ModuleNotFoundError:  # Windows: one runner per results directory there
    fcntl = None

from bench.core.errors import UserError
from bench.infra.atomic import atomic_path, write_json, write_text

from bench.results.predictions import predictions_path, write_predictions
from bench.results.schema import COLUMNS, JSON_COLUMNS, REQUIRED_COLUMNS, STATUSES, CellRecord


def cells_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / "cells"


def write_row(results_dir: str | Path, row: dict[str, Any]) -> None:
    """Record one finished cell atomically. JSON-typed columns are stored as JSON text."""
    row = dict(row)
    for col in JSON_COLUMNS:
        if not isinstance(row.get(col), str):
            row[col] = json.dumps(row.get(col), sort_keys=True, default=str)
    write_json(cells_dir(results_dir) / f"{row['cell']}.json", row)


def record_cell(results_dir: str | Path, record: CellRecord) -> None:
    """Record what one cell produced: its traceback (``logs/``), its predictions, then its row.

    The predictions file is published before the row, so a recorded ok row always has its predictions (a crash
    in between leaves a file without a row, which the rerun overwrites). A row without predictions (an error or
    skipped cell, a strategy that keeps none) removes a file an earlier run of the same key left, so a file
    never describes a row other than the recorded one.
    """
    key = record.row["cell"]
    if record.traceback:
        write_text(Path(results_dir) / "logs" / f"{key}.txt", record.traceback)
    if record.predictions is not None and record.row.get("status") == "ok":
        write_predictions(results_dir, key, record.predictions)
    else:
        predictions_path(results_dir, key).unlink(missing_ok=True)
    write_row(results_dir, record.row)


def record_copy(results_dir: str | Path, row: dict[str, Any], from_key: str) -> None:
    """Record ``row`` (a copy of cell ``from_key``'s row under another key) with a copy of ``from_key``'s
    predictions file, published before the row as ``record_cell`` does (none when ``from_key`` has none)."""
    source, target = predictions_path(results_dir, from_key), predictions_path(results_dir, row["cell"])
    if source.is_file():
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    else:
        target.unlink(missing_ok=True)
    write_row(results_dir, row)


def read_cell_rows(results_dir: str | Path, on_damaged=None) -> dict[str, dict[str, Any]]:
    """Return ``{cell key: row}``. Damaged files are skipped and passed to ``on_damaged(path, reason)``."""
    rows = {}
    for path in sorted(cells_dir(results_dir).glob("*.json")):
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(row, dict) or row.get("cell") != path.stem or row.get("status") not in STATUSES:
                raise ValueError("not a transferbench cell row")
        except (ValueError, OSError) as err:
            if on_damaged:
                on_damaged(path, str(err).splitlines()[0])
            continue
        rows[path.stem] = row
    return rows


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    extra = [c for c in frame.columns if c not in COLUMNS]
    frame = frame[COLUMNS + sorted(extra)]
    if len(frame):
        params = frame["params"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
        for key in sorted({k for p in params for k in p}):
            values = params.map(lambda p, k=key: p.get(k))
            kinds = {_kind(v) for v in values if v is not None}
            # Parquet needs one type per column: a parameter that mixes types (2 vs "auto") is stored as JSON text.
            mixed = len(kinds) > 1 or bool(kinds & {"list", "dict"})
            frame[f"p_{key}"] = values.map(lambda v: json.dumps(v) if v is not None else None) if mixed else values
    return frame.sort_values(["task", "backbone", "strategy", "fraction", "seed", "cell"], kind="stable",
                             ignore_index=True) if len(frame) else frame


def _kind(value: Any) -> str:
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def consolidate(results_dir: str | Path) -> pd.DataFrame:
    """Rebuild results.parquet and results.csv from the per-cell files (atomic replace of both)."""
    frame = to_frame(list(read_cell_rows(results_dir).values()))
    results_dir = Path(results_dir)
    with atomic_path(results_dir / "results.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    with atomic_path(results_dir / "results.csv") as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def consolidate_locked(results_dir: str | os.PathLike) -> None:
    """Rebuild results.parquet/csv while holding a lock on the results directory.

    Each rebuild reads cells/ and replaces the tables atomically; without the lock, two runners sharing a directory
    could finish in the order "A reads, B reads and writes, A writes" and A's older table would hide B's last rows.
    """
    path = Path(results_dir) / ".consolidate.lock"
    with open(path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        consolidate(results_dir)


def load_results(results_dir: str | Path) -> pd.DataFrame:
    """Read a results directory (or a single .parquet/.csv file) into the tidy frame.

    Per-cell files win: they are always complete, while results.parquet may lag behind a running suite.
    Raises UserError with one line for a missing or unreadable directory.
    """
    path = Path(results_dir)
    if not path.exists():
        raise UserError(f"results not found: {path}; run a suite first (transferbench run SUITE.yaml)")
    if path.is_file():
        try:
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except Exception as err:  # pyarrow/pandas raise many types for a damaged file
            raise UserError(f"{path}: not a readable results file ({type(err).__name__}); rerun the suite "
                            "or point at the results directory") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise UserError(f"{path}: has no {missing[0]!r} column, so it is not a transferbench results file "
                            f"(needs {', '.join(REQUIRED_COLUMNS)}); point at the results directory instead")
        return to_frame(frame.to_dict("records"))
    damaged: list[str] = []
    rows = read_cell_rows(path, on_damaged=lambda p, why: damaged.append(p.name))
    if damaged:
        warnings.warn(f"{len(damaged)} damaged cell file(s) skipped in {path / 'cells'}: {', '.join(damaged[:3])}"
                      " (rerun the suite to recompute them)", stacklevel=2)
    if not rows and (path / "results.parquet").is_file():
        return load_results(path / "results.parquet")
    if not rows:
        raise UserError(f"{path}: no results recorded yet (expected {path / 'cells'}/*.json)")
    return to_frame(list(rows.values()))



def read_pretraining(results_dir: str | Path) -> list[dict[str, Any]]:
    """The source-pretraining rows (role ``pretrain``) of a results directory: ``pretrain/*.json``.

    They sit beside ``cells/``, not in it: a pretraining run produced weights, it is not a strategy's result.
    A damaged file is skipped (the run rewrites it when the suite runs again).
    """
    rows = []
    for path in sorted((Path(results_dir) / "pretrain").glob("*.json")):
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
