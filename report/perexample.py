"""What the stored per-example predictions show: confusion matrices and calibration per strategy and group.

Reads ``RESULTS/predictions/<cell key>.npz`` (``bench.results.predictions``) of the ``ok`` final cells; results
recorded before cells kept predictions have none, and the report then says so in one sentence instead of
showing these tables. Everything pools the test predictions of a configuration's seeds: a group is one task,
backbone and label fraction, and within it every strategy is scored on the same test examples.

- Confusion: counts of (true class, predicted class) summed over seeds, and the share of each true class's
  examples (row-normalised, so every row sums to 1).
- Calibration: expected calibration error (Guo, Pleiss, Sun, Weinberger 2017, "On calibration of modern neural
  networks"): the predictions' confidence (the maximum class probability) is cut into ``ECE_BINS`` equal-width
  bins ``((m-1)/M, m/M]``; ``ECE = sum_m |B_m|/n · |accuracy(B_m) − confidence(B_m)|``. The per-bin accuracy and
  mean confidence are the reliability diagram.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from bench.results.predictions import CellPredictions
from report.vocabulary import GROUP, Predictions, strategy_sort_key

ECE_BINS = 15  # Guo et al. 2017 use 15 equal-width bins
TOP_PAIRS = 5  # confused pairs listed per strategy when a task has too many classes for a readable heatmap

CONFUSION_COLUMNS = GROUP + ["strategy", "true_index", "predicted_index", "true_class", "predicted_class", "count",
                             "share", "n_true", "seeds"]
CALIBRATION_COLUMNS = GROUP + ["strategy", "n", "seeds", "accuracy", "confidence", "ece"]
RELIABILITY_COLUMNS = GROUP + ["strategy", "bin", "low", "high", "n", "accuracy", "confidence"]


@dataclass(frozen=True)
class Calibration:
    """ECE of one set of predictions, with its reliability bins (one row per non-empty bin)."""

    ece: float
    n: int
    accuracy: float
    confidence: float
    bins: pd.DataFrame  # bin (0-based), low, high, n, accuracy, confidence


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> Calibration:
    """Expected calibration error over equal-width confidence bins ``((m-1)/M, m/M]`` (Guo et al. 2017).

    Args:
        confidence: the probability of the predicted class, per example.
        correct: whether the prediction was right, per example.
        bins: number of bins M.

    Returns:
        A ``Calibration``; everything NaN (and no bins) for no examples.
    """
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=bool).ravel()
    n = int(conf.size)
    if n == 0:
        return Calibration(np.nan, 0, np.nan, np.nan, pd.DataFrame(columns=["bin", "low", "high", "n", "accuracy",
                                                                             "confidence"]))
    # right-closed bins: confidence m/M belongs to bin m-1 (0-based); 0 joins the first bin
    index = np.clip(np.ceil(np.clip(conf, 0.0, 1.0) * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    hits = np.bincount(index, weights=hit.astype(float), minlength=bins)
    sums = np.bincount(index, weights=conf, minlength=bins)
    used = counts > 0
    acc_bin, conf_bin = hits[used] / counts[used], sums[used] / counts[used]
    ece = float(np.sum(counts[used] / n * np.abs(acc_bin - conf_bin)))
    which = np.flatnonzero(used)
    table = pd.DataFrame({"bin": which, "low": which / bins, "high": (which + 1) / bins, "n": counts[used],
                          "accuracy": acc_bin, "confidence": conf_bin})
    return Calibration(ece, n, float(hit.mean()), float(conf.mean()), table)


@dataclass(frozen=True)
class PerExample:
    """The report's per-example tables (long format, as exported to CSV) and what they cover."""

    confusion: pd.DataFrame
    calibration: pd.DataFrame
    reliability: pd.DataFrame
    cells: int  # ok final cells with readable predictions
    missing: int  # ok final cells without

    @property
    def empty(self) -> bool:
        return self.cells == 0

    def classes(self, task: str) -> int:
        """Number of classes of a task (from its confusion rows)."""
        rows = self.confusion[self.confusion["task"] == task]
        return int(rows["true_index"].max()) + 1 if len(rows) else 0


def _class_names(preds: list[CellPredictions], k: int) -> list[str]:
    named = [p.classes for p in preds if len(p.classes) == k]
    return [str(c) for c in named[0]] if named else [str(i) for i in range(k)]


def compute(final: pd.DataFrame, preds: Predictions) -> PerExample:
    """Confusion and calibration tables of the ``ok`` final rows that have stored predictions.

    Args:
        final: normalised final rows (``tables.normalize``, ``tables.final_only``).
        preds: stored predictions by cell key (``report.final_predictions``, read once per report).
    """
    ok = final[final["status"] == "ok"]
    confusion, calib, reliability = [], [], []
    for key, cells in ok.groupby(GROUP + ["strategy"], dropna=False, sort=False):
        found = [preds[c] for c in cells["cell"] if c in preds]
        if not found:
            continue
        ident = dict(zip(GROUP + ["strategy"], key))
        tests = [p.test for p in found]
        k = max(max((len(p.classes) for p in found), default=0),
                max(int(max(t.y.max(initial=-1), t.pred.max(initial=-1))) + 1 for t in tests),
                max(t.proba.shape[1] if t.proba.ndim == 2 else 0 for t in tests))
        names = _class_names(found, k)
        y, pred = np.concatenate([t.y for t in tests]), np.concatenate([t.pred for t in tests])
        counts = confusion_matrix(y, pred, labels=np.arange(k))
        n_true = counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = counts / n_true[:, None]
        for i in range(k):
            for j in range(k):
                confusion.append({**ident, "true_index": i, "predicted_index": j, "true_class": names[i],
                                  "predicted_class": names[j],
                                  "count": int(counts[i, j]), "share": float(share[i, j]), "n_true": int(n_true[i]),
                                  "seeds": len(found)})
        conf = np.concatenate([_confidence(t.proba, t.pred) for t in tests])
        result = calibration(conf, y == pred)
        calib.append({**ident, "n": result.n, "seeds": len(found), "accuracy": result.accuracy,
                      "confidence": result.confidence, "ece": result.ece})
        reliability += [{**ident, **b} for b in result.bins.to_dict("records")]
    return PerExample(_order(pd.DataFrame(confusion, columns=CONFUSION_COLUMNS)),
                      _order(pd.DataFrame(calib, columns=CALIBRATION_COLUMNS)),
                      _order(pd.DataFrame(reliability, columns=RELIABILITY_COLUMNS)),
                      cells=len(preds), missing=int(len(ok) - len(preds)))


def _confidence(proba: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The probability the model gave its own prediction (float16 on disk: computed in float64)."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or not len(proba):
        return np.full(len(pred), np.nan)
    return proba[np.arange(len(pred)), np.clip(pred, 0, proba.shape[1] - 1)]


def _order(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return table
    key = table["strategy"].map(strategy_sort_key)
    return (table.assign(_k=key).sort_values(["task", "backbone", "fraction", "_k"], kind="stable")
            .drop(columns="_k").reset_index(drop=True))


def top_confused(confusion: pd.DataFrame, limit: int = TOP_PAIRS) -> pd.DataFrame:
    """Per group and strategy, the ``limit`` off-diagonal (true, predicted) pairs with the largest share of the
    true class's examples (ties: larger count first); pairs never confused are left out."""
    off = confusion[(confusion["true_index"] != confusion["predicted_index"]) & (confusion["count"] > 0)]
    if off.empty:
        return off
    off = off.sort_values(["share", "count"], ascending=False, kind="stable")
    return _order(off.groupby(GROUP + ["strategy"], dropna=False, sort=False).head(limit))
