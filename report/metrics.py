"""The per-group tables of the report: run summary, leaderboard with bootstrap intervals, transfer metrics,
learning-curve bands and failures.

Every function here is pure (a normalised frame in, a frame or dict out, see ``report.vocabulary.normalize``) so
the report can be tested on synthetic results and the same tables can be written as CSV next to the HTML.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.results import seedstats as stats
from bench.results import uncertainty
from report.vocabulary import BASELINE, GROUP, Predictions, _parse_json, curve_start, strategy_sort_key

def run_summary(frame: pd.DataFrame, planned: list[str] | None = None) -> dict[str, Any]:
    """Header facts: suites, run dates, devices, package versions, git shas, and cell counts.

    ``planned`` is the runner's list of cell keys (plan.json); without it the pending count is unknown (None).
    """
    def distinct(col: str) -> list[str]:
        return sorted({v for v in frame[col] if v})

    versions: dict[str, set[str]] = {}
    for text in frame["versions"]:
        parsed = _parse_json(text, {})
        for pkg, ver in (parsed.items() if isinstance(parsed, dict) else []):
            versions.setdefault(str(pkg), set()).add(str(ver))
    counts = frame["status"].value_counts()
    done_keys = set(frame["cell"].dropna())
    started = [v for v in frame["started_at"] if v]
    finished = [v for v in frame["finished_at"] if v]
    return {
        "suites": distinct("suite"),
        "devices": distinct("device"),
        "git_shas": distinct("git_sha"),
        "versions": {pkg: sorted(vs) for pkg, vs in sorted(versions.items())},
        "started": min(started) if started else None,
        "finished": max(finished) if finished else None,
        "ok": int(counts.get("ok", 0)),
        "error": int(counts.get("error", 0)),
        "skipped": int(counts.get("skipped", 0)),
        "recorded": len(frame),
        "planned": len(planned) if planned is not None else None,
        "pending": len(set(planned) - done_keys) if planned is not None else None,
    }


def _ci_columns(prefix: str, interval: uncertainty.Estimate) -> dict[str, float]:
    return {f"{prefix}_mean": interval.mean, f"{prefix}_ci_low": interval.low, f"{prefix}_ci_high": interval.high}


def strategy_cells(rows: pd.DataFrame, metric: str, predictions: Predictions | None = None
                   ) -> uncertainty.StrategyCells:
    """One strategy's ``ok`` rows of one group as the bootstrap's input: the finite metric values, ``n_test``
    (the rows' median; None when not recorded) and the cells' test predictions when every one of them has some."""
    values = pd.to_numeric(rows[metric], errors="coerce") if metric in rows.columns else pd.Series(math.nan,
                                                                                                    rows.index)
    kept = rows[np.isfinite(values.to_numpy(float))]
    sizes = stats.finite(kept["n_test"]) if "n_test" in kept.columns else np.array([])
    n_test = int(np.median(sizes)) if sizes.size else None
    preds = None
    if predictions and "cell" in kept.columns and len(kept):
        found = [predictions.get(key) for key in kept["cell"]]
        preds = [p.test for p in found] if all(p is not None for p in found) else None
    return uncertainty.StrategyCells(values[kept.index].to_numpy(float), n_test, preds)


def _mark_best(table: pd.DataFrame, column: str, flag: str, higher_is_better: bool) -> None:
    """Flag the best value of ``column`` within each task/backbone/fraction (ties all flagged)."""
    grouped = table.groupby(GROUP, dropna=False)[column]
    best = grouped.transform("max" if higher_is_better else "min")
    table[flag] = table[column].notna() & np.isclose(table[column], best)


def leaderboard(frame: pd.DataFrame, predictions: Predictions | None = None,
                comparisons: dict[tuple, uncertainty.Comparison] | None = None) -> pd.DataFrame:
    """One row per task × backbone × strategy × fraction: accuracy (and macro-F1) over seeds with 95 % intervals.

    The intervals are bootstrap percentile intervals over seeds and test examples (``bench.results.uncertainty``;
    from ``predictions`` where every seed has them, else the binomial test model on ``n_test``), so they stay in
    [0, 1]; ``n_test`` and ``interval`` say what each is over. Counts failed and skipped cells of the
    configuration too, so a mean over 2 of 5 seeds is visible as such. ``best_*`` columns flag the best
    configuration within the same task, backbone and label fraction.
    """
    rows = []
    comparisons = comparisons if comparisons is not None else group_comparisons(frame, predictions)
    intervals = {(*key, s): e for key, c in comparisons.items() for s, e in c.estimates.items()}
    for (task, backbone, strategy, fraction), cells in frame.groupby(GROUP[:2] + ["strategy", "fraction"],
                                                                      dropna=False, sort=False):
        ok = cells[cells["status"] == "ok"]
        acc, f1 = (intervals.get((task, backbone, _nan_free(fraction), metric, strategy), _NO_ESTIMATE)
                   for metric in METRICS)
        rows.append({
            "task": task, "backbone": backbone, "strategy": strategy, "fraction": fraction,
            "n": acc.n_seeds, "n_test": acc.n_test, "interval": acc.method,
            "failed": int((cells["status"] == "error").sum()),
            "skipped": int((cells["status"] == "skipped").sum()),
            **_ci_columns("accuracy", acc), "accuracy_sd": stats.mean_ci(ok["accuracy"]).sd,
            **_ci_columns("macro_f1", f1),
            "wall_time_s_mean": ok["wall_time_s"].mean(), "trainable_params": ok["trainable_params"].median(),
            "total_params": ok["total_params"].median(),
        })
    table = pd.DataFrame(rows, columns=_LEADERBOARD_COLUMNS)
    if table.empty:
        return table.assign(best_accuracy=[], best_wall_time=[], best_trainable_params=[])
    table = _sorted(table)
    _mark_best(table, "accuracy_mean", "best_accuracy", higher_is_better=True)
    _mark_best(table, "wall_time_s_mean", "best_wall_time", higher_is_better=False)
    _mark_best(table, "trainable_params", "best_trainable_params", higher_is_better=False)
    return table


METRICS = ("accuracy", "macro_f1")
_NO_ESTIMATE = uncertainty.Estimate(math.nan, math.nan, math.nan, 0, 0, "")


def group_comparisons(frame: pd.DataFrame, predictions: Predictions | None = None
                      ) -> dict[tuple, uncertainty.Comparison]:
    """``(task, backbone, fraction, metric) -> Comparison``: one joint bootstrap per group and metric of the
    ``ok`` rows, computed once for the leaderboard and the verdict (which print the same intervals)."""
    out = {}
    ok = frame[frame["status"] == "ok"]
    for key, group in ok.groupby(GROUP, dropna=False, sort=False):
        by_strategy = list(group.groupby("strategy", sort=False))
        cells = {m: {str(s): strategy_cells(rows, m, predictions) for s, rows in by_strategy} for m in METRICS}
        task, backbone, fraction = key
        for metric, found in uncertainty.compare_metrics(cells, key=key).items():
            out[(task, backbone, _nan_free(fraction), metric)] = found
    return out


def _nan_free(fraction: float) -> float | None:
    """A dictionary key for a fraction: NaN ("all labels") never equals itself, None does."""
    return None if isinstance(fraction, float) and math.isnan(fraction) else float(fraction)


_LEADERBOARD_COLUMNS = ["task", "backbone", "strategy", "fraction", "n", "n_test", "interval", "failed", "skipped",
                        "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high", "accuracy_sd", "macro_f1_mean",
                        "macro_f1_ci_low", "macro_f1_ci_high", "wall_time_s_mean", "trainable_params", "total_params"]


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    key = table["strategy"].map(strategy_sort_key)
    return (table.assign(_k=key).sort_values(["task", "backbone", "fraction", "_k"], kind="stable")
            .drop(columns="_k").reset_index(drop=True))


def cell_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """Learning-curve metrics of every ``ok`` cell (definitions in ``bench.results.seedstats`` and
    docs/REPORT.md).

    Per task/backbone/fraction group: "start" is read at ``stats.start_epoch(H)`` (epoch 1 on per-epoch curves),
    H the group's longest SGD run, the same point for every strategy; the time-to-threshold bar is 90 % of the
    best validation score any cell of the group reached, so times compare across strategies; the AULC horizon
    is H. Only SGD curves have slope, AULC and time to threshold; a solved probe (``l2-path``) and zero-shot
    (``none``) get NaN there, and their start and asymptote are their validation score (the selected probe, the
    zero-shot score): a strategy that does not train has its final skill from the start.
    """
    ok = frame[frame["status"] == "ok"]
    out = []
    for _, group in ok.groupby(GROUP, dropna=False, sort=False):
        curves, epochs = list(group["_val_curve"]), list(group["_epoch_curve"])
        sgd = [kind == stats.SGD for kind in group["_curve_kind"]]
        starts = [curve_start(e) for e in epochs]
        best = max((np.nanmax(c) for c in curves if np.isfinite(c).any()), default=math.nan)
        threshold = stats.THRESHOLD_FRACTION * best
        horizon = max((s + len(c) - 1 for c, s, k in zip(curves, starts, sgd) if len(c) and k), default=0)
        at = stats.start_epoch(horizon)
        for (_, row), curve, epoch, start, is_sgd in zip(group.iterrows(), curves, epochs, starts, sgd):
            fallback = row["val_accuracy"] if math.isfinite(row["val_accuracy"]) else row["accuracy"]
            if is_sgd:
                begin, begin_epoch = stats.start_point(curve, epoch, at)
                metrics = {"start": begin, "start_epoch": begin_epoch,
                           "slope": stats.early_slope(curve, epoch, at),
                           "asymptote": stats.asymptote(curve, row["best_epoch"], start=start) if len(curve)
                           else fallback,
                           "aulc": stats.area_under_curve(curve, horizon, start=start),
                           "time_to_threshold_s": stats.time_to_threshold(curve, row["_time_curve"], threshold)}
            else:
                metrics = {"start": fallback, "start_epoch": math.nan, "slope": math.nan, "asymptote": fallback,
                           "aulc": math.nan, "time_to_threshold_s": math.nan}
            out.append({
                "cell": row["cell"], "task": row["task"], "backbone": row["backbone"], "fraction": row["fraction"],
                "strategy": row["strategy"], "seed": row["seed"], "curve_kind": row["_curve_kind"],
                "accuracy": row["accuracy"], **metrics, "threshold": threshold,
            })
    return pd.DataFrame(out, columns=["cell", "task", "backbone", "fraction", "strategy", "seed", "curve_kind",
                                      "accuracy", "start", "start_epoch", "slope", "asymptote", "aulc", "threshold",
                                      "time_to_threshold_s"])


CURVE_METRICS = ("start", "slope", "asymptote", "aulc", "time_to_threshold_s")


def transfer_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """Per task/backbone/fraction/strategy: curve metrics over seeds and their difference to from-scratch.

    For each metric (start, slope, asymptote, AULC, time to threshold): ``<m>_mean`` (over seeds) and
    ``<m>_delta`` with ``<m>_delta_low/high`` (Welch 95 % CI of strategy − from-scratch); Δ start is the
    lectures' "jumpstart". ``curve_kind`` says which metrics exist (NaN slope/AULC/time for non-SGD curves),
    ``start_epoch`` the epoch start was read at (NaN without an SGD curve). ``reached`` / ``reached_scratch``
    count seeds that reached the time threshold. ``negative_transfer`` is True when the strategy's test
    accuracy is below from-scratch's by a one-sided Welch t-test at 5 %
    (``p_below_scratch``); it needs two seeds on each side, otherwise it is None (undecided). ``baseline`` says
    whether the group has a from-scratch run at all.
    """
    per_cell = cell_metrics(frame)
    rows = []
    for key, group in per_cell.groupby(GROUP, dropna=False, sort=False):
        scratch = group[group["strategy"] == BASELINE]
        for strategy, cells in group.groupby("strategy", sort=False):
            row: dict[str, Any] = dict(zip(GROUP, key), strategy=strategy, n=len(cells), n_scratch=len(scratch),
                                       baseline=not scratch.empty, curve_kind=cells["curve_kind"].iloc[0],
                                       start_epoch=cells["start_epoch"].max(), threshold=cells["threshold"].iloc[0],
                                       reached=int(cells["time_to_threshold_s"].notna().sum()),
                                       reached_scratch=int(scratch["time_to_threshold_s"].notna().sum()))
            for metric in CURVE_METRICS:
                row[f"{metric}_mean"] = stats.mean_ci(cells[metric]).mean
                diff = stats.welch_difference(cells[metric], scratch[metric])
                compare = strategy != BASELINE
                row[f"{metric}_delta"] = diff.diff if compare else math.nan
                row[f"{metric}_delta_low"] = diff.low if compare else math.nan
                row[f"{metric}_delta_high"] = diff.high if compare else math.nan
            test = stats.welch_difference(cells["accuracy"], scratch["accuracy"])
            decidable = strategy != BASELINE and math.isfinite(test.p_less)
            row["accuracy_delta"] = test.diff if strategy != BASELINE else math.nan
            row["p_below_scratch"] = test.p_less if decidable else math.nan
            row["negative_transfer"] = test.significantly_below() if decidable else None
            rows.append(row)
    columns = GROUP + ["strategy", "n", "n_scratch", "baseline", "curve_kind", "start_epoch", "threshold", "reached",
                       "reached_scratch"] + [
        f"{m}{s}" for m in CURVE_METRICS for s in ("_mean", "_delta", "_delta_low", "_delta_high")] + [
        "accuracy_delta", "p_below_scratch", "negative_transfer"]
    table = pd.DataFrame(rows, columns=columns)
    return _sorted(table) if len(table) else table


def failures(frame: pd.DataFrame, status: str = "error") -> pd.DataFrame:
    """Rows with the given status (``error`` or ``skipped``) and their message, so nothing fails silently."""
    cols = ["task", "backbone", "strategy", "fraction", "seed", "cell", "error", "role"]
    rows = frame.loc[frame["status"] == status, cols].copy()
    rows["error"] = rows["error"].fillna("(no message recorded)")
    return rows.sort_values(cols[:5], kind="stable").reset_index(drop=True)


def curve_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean learning curve per task/backbone/fraction/strategy and epoch, with the 95 % t-band over seeds.

    At each epoch only the seeds still running count (early stopping shortens some); ``time_mean`` is the mean
    wall time at the end of that epoch, so the same band can be drawn against wall time.
    """
    ok = frame[frame["status"] == "ok"]
    lengths = ok["_val_curve"].map(len)
    if not int(lengths.sum()):
        return pd.DataFrame(columns=GROUP + ["strategy", "epoch", "n", "mean", "low", "high", "time_mean"])
    idx = np.repeat(ok.index.to_numpy(), lengths)
    long = ok.loc[idx, GROUP + ["strategy"]].reset_index(drop=True)
    long["epoch"] = np.concatenate(list(ok["_epoch_curve"][lengths > 0]))
    long["value"] = np.concatenate(list(ok["_val_curve"][lengths > 0]))
    long["time"] = np.concatenate(list(ok["_time_curve"][lengths > 0]))
    agg = (long.groupby(GROUP + ["strategy", "epoch"], dropna=False, sort=False)
           .agg(n=("value", "count"), mean=("value", "mean"), sd=("value", "std"), time_mean=("time", "mean"))
           .reset_index())
    # t-interval, vectorised: thousands of epoch groups make per-group scipy calls the bottleneck
    n = agg["n"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tcrit = np.where(n > 1, stats.t_quantile(0.5 + stats.CONFIDENCE / 2, np.maximum(n - 1, 1)), np.nan)
        half = tcrit * agg["sd"].to_numpy(float) / np.sqrt(n)
    # cut to the score's range: with two seeds t(0.975, 1) = 12.7 standard errors would reach far past [0, 1]
    agg["low"], agg["high"] = (agg["mean"] - half).clip(lower=0.0), (agg["mean"] + half).clip(upper=1.0)
    return agg.drop(columns="sd")

