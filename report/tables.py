"""From the tidy results frame to the report's tables: run summary, leaderboard, transfer metrics, failures.

Every function here is pure (a frame in, a frame or dict out) so the report can be tested on synthetic results
and the same tables can be written as CSV next to the HTML.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.results import seedstats as stats
from bench.results import uncertainty
from bench.results.predictions import CellPredictions
from report import estimates
from bench.results.roles import FINAL, final_only, is_final, is_role  # noqa: F401 - re-exported

Predictions = Mapping[str, CellPredictions]  # cell key -> what the cell predicted (bench.results.read_many)

BASELINE = "from-scratch"
# Known strategies first, in the order the lectures introduce them; anything newer follows alphabetically.
STRATEGY_ORDER = ("from-scratch", "feature-extraction", "partial-freeze", "full-fine-tune", "zero-shot")
GROUP = ["task", "backbone", "fraction"]  # one comparison: same task, same backbone, same label budget
NUMERIC = ["seed", "fraction", "accuracy", "macro_f1", "val_accuracy", "best_epoch", "epochs_run", "wall_time_s",
           "train_time_s", "trainable_params", "total_params", "first_epoch_time_s", "n_test"]
TEXT = ["cell", "suite", "task", "backbone", "strategy", "status", "error", "device", "git_sha", "versions",
        "started_at", "finished_at", "main_metric", "role", "curve_kind", "selected_from"]


def _parse_json(value: Any, default: Any) -> Any:
    if isinstance(value, (list, dict)):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return json.loads(value)
        except ValueError:
            return default
    return default


def _curve_arrays(curve: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(val_accuracy, time_s, epoch number) per curve point in epoch order; missing values are NaN.

    A point without an ``epoch`` number counts as the one after the previous point (epoch 1 first), as the
    loop recorded them before curves could start with an epoch-0 point (the score before any training).
    """
    epochs = [e for e in _parse_json(curve, []) if isinstance(e, dict)]
    numbers = [e.get("epoch") if isinstance(e.get("epoch"), (int, float)) else i + 1 for i, e in enumerate(epochs)]
    order = sorted(range(len(epochs)), key=numbers.__getitem__)
    epochs, numbers = [epochs[i] for i in order], [numbers[i] for i in order]

    def column(key: str) -> np.ndarray:
        return np.array([e.get(key) if isinstance(e.get(key), (int, float)) else np.nan for e in epochs], float)

    return column("val_accuracy"), column("time_s"), np.array(numbers, float)


def curve_kind(recorded: Any, curve: Any) -> str:
    """What a row's curve points are (``seedstats.CURVE_KINDS``): the recorded ``curve_kind`` when the row has
    one; for rows recorded before that column existed, read from the curve itself: points carrying an ``l2``
    strength are a solved probe's L2 path, a curve that is empty or only the epoch-0 point is "none" (zero-shot),
    anything else is per-epoch SGD (this also classifies version-1 feature-extraction, which trained by SGD)."""
    if recorded in stats.CURVE_KINDS:
        return str(recorded)
    points = [p for p in _parse_json(curve, []) if isinstance(p, dict)]
    if any("l2" in p for p in points):
        return stats.L2_PATH
    if all(p.get("epoch") == 0 for p in points):  # also the empty curve
        return stats.NO_CURVE
    return stats.SGD


def curve_start(epochs: np.ndarray) -> int:
    """Epoch number of a curve's first point: 0 when it has the before-training point, else 1."""
    return int(epochs[0]) if len(epochs) and np.isfinite(epochs[0]) and epochs[0] == 0 else 1


def strategy_sort_key(name: str) -> tuple[int, str]:
    return (STRATEGY_ORDER.index(name) if name in STRATEGY_ORDER else len(STRATEGY_ORDER), str(name))


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every column the report reads, numeric columns as floats and curves parsed.

    Adds ``_val_curve``, ``_time_curve`` and ``_epoch_curve`` (float arrays per row), ``_curve_kind`` (see
    ``curve_kind``) and ``role`` (``final`` where missing). Works on frames from ``load_results``, from a
    CSV round trip (JSON as text) or built by hand (lists and dicts, missing columns).
    """
    out = frame.copy()
    for col in NUMERIC + TEXT + ["curve"]:
        if col not in out.columns:
            out[col] = None
    for col in NUMERIC:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in TEXT:
        out[col] = out[col].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    out["status"] = out["status"].fillna("error")
    for col in ("task", "backbone", "strategy"):
        out[col] = out[col].fillna("?")
    out.loc[is_final(out), "role"] = FINAL
    arrays = [_curve_arrays(c) for c in out["curve"]]
    out["_val_curve"] = [a for a, _, _ in arrays]
    out["_time_curve"] = [t for _, t, _ in arrays]
    out["_epoch_curve"] = [e for _, _, e in arrays]
    out["_curve_kind"] = [curve_kind(k, c) for k, c in zip(out["curve_kind"], out["curve"])]
    return out.reset_index(drop=True)


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


@dataclass(frozen=True)
class ReportTables:
    """Every table of one report, computed once and shared by the HTML page and the CSV export."""

    frame: pd.DataFrame  # normalised results, final rows only: what the tables and figures show
    summary: dict[str, Any]
    leaderboard: pd.DataFrame
    transfer: pd.DataFrame
    curves: pd.DataFrame
    errors: pd.DataFrame
    skipped: pd.DataFrame
    estimates: estimates.EstimateTables | None = None  # transferability estimates (role "estimate" rows)
    all_rows: pd.DataFrame | None = None  # normalised results, every role (search trials too)
    budget: pd.DataFrame | None = None  # report.budget.budget_table
    alarms: pd.DataFrame | None = None  # report.alarm.alarm_table: finals far below their search trial
    per_example: Any = None  # report.perexample.PerExample, from stored predictions (build_report reads them)
    verdict: Any = None  # report.verdict.Verdict (its module builds on this one)
    crossover: pd.DataFrame | None = None  # report.crossover.crossover_table
    crossover_summary: pd.DataFrame | None = None  # report.crossover.crossover_summary

    def exports(self) -> dict[str, pd.DataFrame]:
        """CSV name suffix → table, as written next to the HTML."""
        both = pd.concat([self.errors.assign(status="error"), self.skipped.assign(status="skipped")],
                         ignore_index=True)
        out = {"leaderboard": self.leaderboard, "transfer_metrics": self.transfer,
               "learning_curves": self.curves, "failures": both}
        if self.estimates is not None and not self.estimates.empty:
            out |= {"estimates": self.estimates.scores, "estimate_correlations": self.estimates.correlations}
        if self.budget is not None and len(self.budget):
            out["budget"] = self.budget
        if self.alarms is not None and len(self.alarms):
            out["search_vs_final"] = self.alarms
        if self.per_example is not None and not self.per_example.empty:
            out |= {"confusion": self.per_example.confusion, "calibration": self.per_example.calibration,
                    "reliability": self.per_example.reliability}
        if self.verdict is not None and self.verdict.groups:
            out["verdict"] = self.verdict.table()
        if self.crossover is not None and len(self.crossover):
            out |= {"crossover": self.crossover, "crossover_summary": self.crossover_summary}
        return out


def compute(frame: pd.DataFrame, planned: list[str] | None = None,
            predictions: Predictions | None = None) -> ReportTables:
    """All report tables from a results frame (as ``bench.results.load_results`` returns it).

    Leaderboard, transfer metrics, learning curves and the figures read the ``final`` rows only; the run
    summary and the failures count every recorded cell (a failed search trial is still a failure), and the
    budget table adds the search trials' cost to the final runs'. Estimate rows have their own section.
    ``predictions`` (cell key → ``CellPredictions``) makes the intervals and tests resample test examples.
    """
    from report import alarm, budget, crossover, verdict  # these build on this module's helpers

    norm = normalize(frame[~is_role(frame, "estimate")])
    final = final_only(norm).reset_index(drop=True)
    comparisons = group_comparisons(final, predictions)  # the bootstrap, once for the leaderboard and the verdict
    judged = verdict.compute_verdict(final, predictions=predictions, comparisons=comparisons)
    cross = crossover.crossover_table(judged)
    return ReportTables(final, run_summary(norm, planned), leaderboard(final, predictions, comparisons),
                        transfer_metrics(final),
                        curve_summary(final), failures(norm, "error"), failures(norm, "skipped"),
                        estimates.compute(frame), all_rows=norm, budget=budget.budget_table(norm), verdict=judged,
                        crossover=cross, crossover_summary=crossover.crossover_summary(cross),
                        alarms=alarm.alarm_table(norm))
