"""Transferability estimates in the report: scores per task × backbone, and how well each ranks the backbones.

Reads the ``role == "estimate"`` rows that ``transferbench estimate`` writes (LogME, H-score, NCE, LEEP) and, where
the same results hold trained ``final`` rows of feature extraction or full fine-tuning for the same task, the rank
correlation between each estimator and the measured main metric across backbones: Kendall's τ and the weighted τ
(``scipy.stats.weightedtau``: swaps among the top-ranked backbones weigh more), as in the LogME paper. Pure
functions on frames: no torch, no file access.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from report.vocabulary import ESTIMATE, final_only

ROLE = ESTIMATE  # the role of estimate rows (report.vocabulary)
ESTIMATORS = {"logme": "LogME", "h_score": "H-score", "nce": "NCE", "leep": "LEEP"}
TRAINED = ("feature-extraction", "full-fine-tune")  # the strategies whose accuracy a pretrained model predicts
MIN_BACKBONES = 3
FEW_BACKBONES = f"τ is not meaningful with fewer than {MIN_BACKBONES} backbones"
SCORE_COLUMNS = ["task", "backbone", "base_backbone", "random_init", "fraction", "status", "error",
                 *ESTIMATORS, "n_estimate_samples", "wall_time_s", "source_head", "note"]
CORRELATION_COLUMNS = ["task", "strategy", "fraction", "metric", "estimator", "n_backbones", "backbones", "tau",
                       "tau_p", "weighted_tau", "note"]


@dataclass(frozen=True)
class EstimateTables:
    scores: pd.DataFrame  # one row per recorded estimate (latest per task × backbone × fraction)
    correlations: pd.DataFrame  # one row per task × trained strategy × fraction × estimator

    @property
    def empty(self) -> bool:
        return self.scores.empty


def _column(frame: pd.DataFrame, name: str, default=None) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(default, index=frame.index, dtype=object)


def estimate_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """The estimate rows, latest per task × backbone × fraction, pretrained backbones before their anchors."""
    if "role" not in frame.columns:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    rows = frame[frame["role"] == ROLE].copy()
    for col in SCORE_COLUMNS + ["finished_at"]:
        rows[col] = _column(rows, col)
    for col in [*ESTIMATORS, "n_estimate_samples", "wall_time_s", "fraction"]:
        rows[col] = pd.to_numeric(rows[col], errors="coerce").astype(float)
    rows["random_init"] = rows["random_init"].map(lambda v: v is True or v in ("True", "true", 1))
    rows["base_backbone"] = rows["base_backbone"].fillna(rows["backbone"])
    rows = rows.sort_values("finished_at", kind="stable", na_position="first")
    rows = rows.drop_duplicates(["task", "backbone", "fraction"], keep="last")
    return (rows.sort_values(["task", "base_backbone", "random_init"], kind="stable")[SCORE_COLUMNS]
            .reset_index(drop=True))


def _measured(final: pd.DataFrame) -> pd.DataFrame:
    """Mean main metric over ok seeds per task × strategy × fraction × backbone, for the trained strategies."""
    if final.empty or "strategy" not in final.columns:
        return pd.DataFrame(columns=["task", "strategy", "fraction", "backbone", "metric", "value"])
    ok = final[(final["status"] == "ok") & final["strategy"].isin(TRAINED)].copy()
    metric = _column(ok, "main_metric", "accuracy").fillna("accuracy")
    metric = metric.where(metric.isin(["accuracy", "macro_f1"]), "accuracy")
    ok["metric"] = metric
    numbers = {m: pd.to_numeric(_column(ok, m), errors="coerce").astype(float) for m in ("accuracy", "macro_f1")}
    ok["value"] = numbers["macro_f1"].where(metric == "macro_f1", numbers["accuracy"])
    ok["fraction"] = pd.to_numeric(ok["fraction"], errors="coerce").astype(float)
    return (ok.groupby(["task", "strategy", "fraction", "backbone", "metric"], dropna=False)["value"].mean()
            .reset_index())


def _taus(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, str]:
    if len(x) < MIN_BACKBONES:
        return math.nan, math.nan, math.nan, FEW_BACKBONES
    if np.unique(x).size < 2 or np.unique(y).size < 2:
        return math.nan, math.nan, math.nan, "undefined: every backbone has the same value"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about small samples; the note above already says so
        kendall = stats.kendalltau(x, y)
        weighted = stats.weightedtau(x, y)
    return float(kendall.statistic), float(kendall.pvalue), float(weighted.statistic), ""


def correlations(scores: pd.DataFrame, final: pd.DataFrame) -> pd.DataFrame:
    """Rank correlation of each estimator with the measured metric across the task's pretrained backbones.

    Random-init anchors are left out: no trained row belongs to them. Every fraction with trained results is
    compared with the task's estimates (the estimate describes the backbone and the task, not a label budget).
    """
    ok = scores[(scores["status"] == "ok") & ~scores["random_init"]]
    measured = _measured(final)
    rows = []
    for (task, strategy, fraction, metric), group in measured.groupby(["task", "strategy", "fraction", "metric"],
                                                                      dropna=False, sort=True):
        est = ok[ok["task"] == task].drop_duplicates("backbone", keep="last").set_index("backbone")
        if est.empty:
            continue
        joined = group.set_index("backbone")[["value"]].join(est[list(ESTIMATORS)], how="inner")
        for name in ESTIMATORS:
            pair = joined[["value", name]].dropna()
            if pair.empty:
                continue
            tau, p, weighted, note = _taus(pair[name].to_numpy(), pair["value"].to_numpy())
            rows.append({"task": task, "strategy": strategy, "fraction": fraction, "metric": metric,
                         "estimator": name, "n_backbones": len(pair), "backbones": ", ".join(map(str, pair.index)),
                         "tau": tau, "tau_p": p, "weighted_tau": weighted, "note": note})
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def compute(frame: pd.DataFrame) -> EstimateTables:
    """Estimate scores and their correlations with trained results, from a results frame."""
    scores = estimate_scores(frame)
    return EstimateTables(scores, correlations(scores, final_only(frame)) if len(scores) else
                          pd.DataFrame(columns=CORRELATION_COLUMNS))
