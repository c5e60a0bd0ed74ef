"""The HTML report: results in, one self-contained page (plus CSV tables) out. Never imports torch.

``render_html`` is the pure part (a results frame in, HTML text out); ``build_report`` adds the file system:
reading a results directory, the runner's plan (for the pending count) and writing the page and CSVs.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from bench.infra.atomic import atomic_path, write_text
from bench.core.errors import UserError
from bench.results import cells_dir, load_results, read_pretraining, to_frame
from bench.results.predictions import read_many
from report import html, perexample, tables

__all__ = ["build_report", "render_html"]


def render_html(frame: pd.DataFrame, meta: dict[str, Any] | None = None,
                predictions: tables.Predictions | None = None) -> str:
    """Render the report page for a results frame. Pure: same frame and meta, same HTML.

    Args:
        frame: results as ``bench.results.load_results`` returns them (any subset, possibly empty).
        meta: optional extras: ``planned`` (list of cell keys the suite will run, for the pending count),
            ``suite`` (name if no row has one), ``generated_at``, ``results_dir`` (shown as text), ``notes``
            (list of warnings to show), ``exports`` (label → CSV file name, linked relatively).
        predictions: cell key → ``CellPredictions`` (``bench.results.predictions.read_many``): intervals and tests then
            resample the test examples the cells predicted, paired across strategies; without them the
            binomial test model on ``n_test`` stands in (see docs/REPORT.md).

    Returns:
        The complete HTML document as text.
    """
    meta = dict(meta or {})
    return html.render(tables.compute(frame, meta.get("planned"), predictions), meta)


def read_plan(results_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The runner's ``plan.json`` (``{"suite": name, "cells": [keys]}``) if present, and a note if unreadable."""
    path = results_dir / "plan.json"
    if not path.is_file():
        return None, None
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return None, f"{path.name} is unreadable ({str(err).splitlines()[0]}); the pending count is unknown."
    if not isinstance(plan, dict) or not isinstance(plan.get("cells"), list):
        return None, f"{path.name} has no 'cells' list; the pending count is unknown."
    return plan, None


def _load(results_dir: Path, has_plan: bool) -> tuple[pd.DataFrame, list[str]]:
    """Results frame plus notes (damaged cell files). A directory with only a plan gives an empty frame."""
    recorded = results_dir.is_file() or any(cells_dir(results_dir).glob("*.json")) or (
        results_dir / "results.parquet").is_file()
    if results_dir.is_dir() and not recorded:
        if not has_plan:
            raise UserError(f"{results_dir}: not a results directory (no cells/*.json, results.parquet or "
                            "plan.json); run a suite first (transferbench run SUITE.yaml)")
        return to_frame([]), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = load_results(results_dir)
    notes = [str(w.message) for w in caught]
    for note in notes:  # still say it on the console, not only in the page
        warnings.warn(note, stacklevel=3)
    return frame, notes


def final_predictions(results_dir: Path, frame: pd.DataFrame) -> dict:
    """The stored per-example predictions of the finished final cells (missing files are simply absent)."""
    if not len(frame) or not results_dir.is_dir():
        return {}
    final = tables.final_only(frame)
    keys = final.loc[final["status"] == "ok", "cell"].dropna()
    return read_many(results_dir, keys)


def build_report(results_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the HTML report for a results directory, and its tables as CSV next to it.

    Works on partial results (a running or interrupted suite): recorded cells are reported, and with the
    runner's ``plan.json`` the rest are counted as pending.

    Args:
        results_dir: a results directory (or a single results .parquet/.csv file).
        output: HTML path; default ``RESULTS_DIR/report.html``. CSVs are ``<stem>_<table>.csv`` beside it.

    Returns:
        The path of the written HTML file.

    Raises:
        UserError: the results are missing or unreadable.
    """
    results_dir = Path(results_dir)
    if not results_dir.exists():
        raise UserError(f"results not found: {results_dir}; run a suite first (transferbench run SUITE.yaml)")
    base = results_dir if results_dir.is_dir() else results_dir.parent
    plan, plan_note = read_plan(base)
    frame, notes = _load(results_dir, plan is not None)
    output = Path(output) if output is not None else base / "report.html"
    preds = final_predictions(base, frame)  # read once: the verdict's bootstrap and the per-example tables
    data = tables.compute(frame, plan["cells"] if plan else None, preds)
    data = dataclasses.replace(data, per_example=perexample.compute(data.frame, preds))
    exports = {name: f"{output.stem}_{name}.csv" for name in data.exports()}
    meta = {
        "planned": plan["cells"] if plan else None,
        "suite": (plan or {}).get("suite"),
        "generated_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "results_dir": str(results_dir),
        "pretraining": read_pretraining(base),
        "notes": notes + ([plan_note] if plan_note else []),
        "exports": {f"{name.replace('_', ' ')} (CSV)": file for name, file in exports.items()},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    for name, table in data.exports().items():
        with atomic_path(output.parent / exports[name]) as tmp:
            table.to_csv(tmp, index=False)
    write_text(output, html.render(data, meta))
    return output
