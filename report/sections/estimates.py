"""The "Transferability estimates" section of the HTML page, from ``report.estimates`` tables.

Built from the page's ``cells.TableCell`` / ``cells.Table`` pieces and printed by the template's ``table`` macro with
autoescaping: every name and message shows as text, nothing is marked safe.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from report.estimates import ESTIMATORS, FEW_BACKBONES, MIN_BACKBONES, TRAINED, EstimateTables
from report.cells import TableCell, Table, sort_key, num, seconds

_TIPS = {"logme": "LogME (You et al. 2021): log evidence of a Bayesian linear model on the features",
         "h_score": "H-score (Bao et al. 2019), Ledoit-Wolf shrunk: between-class vs total feature covariance",
         "nce": "NCE (Tran et al. 2019): −H(target | source argmax label); needs a source classifier",
         "leep": "LEEP (Nguyen et al. 2020): log expected empirical prediction; needs a source classifier"}


def scores_table(task: str, scores: pd.DataFrame) -> Table:
    """One task's estimates: a row per backbone and random-init anchor; best pretrained value per column marked."""
    headers = [("backbone", ""), ("fraction", "label fraction whose seed-0 training samples were scored")] + [
        (label, _TIPS[name] + "; higher is better") for name, label in ESTIMATORS.items()] + [
        ("samples", "training samples scored"), ("time", "wall time of the estimate")]
    ok = scores[(scores["status"] == "ok") & ~scores["random_init"]]
    best = {name: ok[name].max() for name in ESTIMATORS}
    anchors = {(r.base_backbone, r.fraction): r for r in scores[scores["random_init"]].itertuples()}
    rows = []
    for r in scores.itertuples():
        sub = "random init: the lower anchor" if r.random_init else ""
        if r.status != "ok":
            rows.append([TableCell(r.backbone, r.backbone, sub), TableCell(f"{r.fraction:g}", sort_key(r.fraction))]
                        + [TableCell("—") for _ in ESTIMATORS]
                        + [TableCell("error", "", str(r.error or ""), "warn"), TableCell("—")])
            continue
        cells = [TableCell(r.backbone, r.backbone, sub or (r.note or "")),
                 TableCell(f"{r.fraction:g}", sort_key(r.fraction))]
        for name in ESTIMATORS:
            value = getattr(r, name)
            if not (isinstance(value, float) and math.isfinite(value)):
                cells.append(TableCell("—", "", "no source classifier" if name in ("nce", "leep") else ""))
                continue
            own = anchors.get((r.base_backbone, r.fraction))
            anchor = getattr(own, name) if own is not None and not r.random_init else np.nan
            below = math.isfinite(anchor) and value < anchor
            is_best = not r.random_init and np.isclose(value, best[name])
            cells.append(TableCell(num(value), sort_key(value), "below its random-init anchor" if below else "",
                                   "neg" if below else "best" if is_best else "",
                                   "best pretrained backbone for this task" if is_best else ""))
        cells += [TableCell(num(r.n_estimate_samples, 0), sort_key(r.n_estimate_samples)),
                  TableCell(seconds(r.wall_time_s), sort_key(r.wall_time_s))]
        rows.append(cells)
    return Table(f"Transferability estimates — {task}", headers, rows)


def _tau_cell(value: float, note: str, p: float | None = None) -> TableCell:
    if not math.isfinite(value):
        return TableCell("—", "", note)
    return TableCell(num(value, 2), sort_key(value), f"p = {num(p)}" if p is not None and math.isfinite(p) else "")


def correlation_table(correlations: pd.DataFrame) -> Table:
    headers = [("task", ""), ("strategy", "trained strategy whose measured metric is ranked"),
               ("fraction", "label fraction of the trained runs"), ("metric", "measured main metric, mean over seeds"),
               ("estimator", ""), ("backbones", "pretrained backbones with both an estimate and trained results"),
               ("Kendall τ", "rank correlation of estimate and measured metric (1 = same order, −1 = reversed)"),
               ("weighted τ", "scipy.stats.weightedtau: agreement among the top-ranked backbones weighs more")]
    rows = []
    for r in correlations.itertuples():
        rows.append([TableCell(r.task, r.task), TableCell(r.strategy, r.strategy),
                     TableCell(f"{r.fraction:g}", sort_key(r.fraction)),
                     TableCell(r.metric, r.metric), TableCell(ESTIMATORS.get(r.estimator, r.estimator), r.estimator),
                     TableCell(str(r.n_backbones), str(r.n_backbones), r.backbones),
                     _tau_cell(r.tau, r.note, r.tau_p), _tau_cell(r.weighted_tau, r.note)])
    return Table("Do the estimates rank the backbones as training does?", headers, rows)


def section(tables: EstimateTables) -> dict[str, Any]:
    """What the template's estimates section shows (``scores`` empty when no estimate was recorded)."""
    scores = tables.scores
    notes = []
    corr = tables.correlations
    if len(scores) and corr.empty:
        notes.append(f"No trained results ({', '.join(TRAINED)}) for these tasks yet: run the suite to compare "
                     "the estimates with measured accuracy.")
    elif len(corr) and not (corr["n_backbones"] >= MIN_BACKBONES).any():
        notes.append(f"{FEW_BACKBONES}: the suite compares {int(corr['n_backbones'].max())}; add backbones for a "
                     "ranking check.")
    return {"scores": [scores_table(t, scores[scores["task"] == t]) for t in sorted(set(scores["task"]))],
            "correlations": correlation_table(corr) if len(corr) else None, "notes": notes,
            "min_backbones": MIN_BACKBONES}

