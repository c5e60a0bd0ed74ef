"""Every table of one report, computed in one place (``compute``) and shared by the HTML page and the CSV export.

The tables themselves live with their analyses (``report.metrics`` for the leaderboard, transfer metrics, curves
and failures; ``report.verdict``, ``report.budget``, ``report.domain`` ...); this module only calls them in order
and re-exports the vocabulary and per-group tables that callers (and tests) reach through ``report.tables``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from report import alarm, budget, crossover, depth, domain, estimates, verdict
from report.metrics import (  # also re-exported
    curve_summary, failures, group_comparisons, leaderboard, run_summary, transfer_metrics)
from report.vocabulary import (  # noqa: F401 - re-exported
    BASELINE, ESTIMATE, GROUP, Predictions, curve_kind, final_only, is_final, is_role, normalize)


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
    verdict: Any = None  # report.verdict.Verdict
    crossover: pd.DataFrame | None = None  # report.crossover.crossover_table
    crossover_summary: pd.DataFrame | None = None  # report.crossover.crossover_summary
    domain: pd.DataFrame | None = None  # report.domain.domain_table: target-only vs source-aware methods
    depth: pd.DataFrame | None = None  # report.depth.transfer_gain_by_depth: transfer gain against backbone depth

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
        if self.domain is not None and len(self.domain):
            out["domain"] = self.domain
        if self.depth is not None and len(self.depth):
            out["transfer_gain_by_depth"] = self.depth
        return out


def compute(frame: pd.DataFrame, planned: list[str] | None = None,
            predictions: Predictions | None = None) -> ReportTables:
    """All report tables from a results frame (as ``bench.results.load_results`` returns it).

    Leaderboard, transfer metrics, learning curves and the figures read the ``final`` rows only; the run
    summary and the failures count every recorded cell (a failed search trial is still a failure), and the
    budget table adds the search trials' cost to the final runs'. Estimate rows have their own section.
    ``predictions`` (cell key → ``CellPredictions``) makes the intervals and tests resample test examples.
    """
    norm = normalize(frame[~is_role(frame, ESTIMATE)])
    final = final_only(norm).reset_index(drop=True)
    comparisons = group_comparisons(final, predictions)  # the bootstrap, once for the leaderboard and the verdict
    judged = verdict.compute_verdict(final, predictions=predictions, comparisons=comparisons)
    cross = crossover.crossover_table(judged)
    return ReportTables(final, run_summary(norm, planned), leaderboard(final, predictions, comparisons),
                        transfer_metrics(final),
                        curve_summary(final), failures(norm, "error"), failures(norm, "skipped"),
                        estimates.compute(frame), all_rows=norm, budget=budget.budget_table(norm), verdict=judged,
                        crossover=cross, crossover_summary=crossover.crossover_summary(cross),
                        alarms=alarm.alarm_table(norm), domain=domain.domain_table(final),
                        depth=depth.transfer_gain_by_depth(final))
