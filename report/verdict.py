"""The verdict: which strategy to use, per task × backbone × label fraction and across them.

Two levels, both on the ``final`` rows (the selected configuration on every seed) that finished:

- Per group (same task, backbone and label fraction): strategies ranked by their mean main metric over seeds,
  with a bootstrap interval over seeds *and test examples* (``bench.results.uncertainty``), and each one's gap to
  the best tested on the same resamples: paired on test examples when every cell kept its predictions, Holm-
  adjusted within the group. The best strategy is picked after looking at the data, so the test is two-sided
  (a one-sided "below the best" would let pure noise look "significant" about twice as often as the level
  promises) and Holm runs over every pair of the group's strategies, not only the k − 1 gaps to the best (the
  gap from the luckiest to the unluckiest strategy is a range, which k − 1 tests call too often). With one seed
  the test examples still give an interval; only one seed without predictions or ``n_test`` leaves the group
  "undecided". ``tied`` lists the strategies whose gap to the best is not
  significant: the honest "best", instead of a strict order.
- Across groups, per label fraction: average ranks (1 = best), the Friedman test over the groups as blocks
  (Demšar 2006), the Nemenyi post-hoc test (scikit-posthocs) with its critical difference of average ranks, and
  per pair of strategies the probability that one beats the other: the bootstrap share of resamples in which it
  scores higher (ties count half), averaged over the groups where both ran.

``sentences`` turns both into a few plain-language lines and never claims more than the tests support: a
strategy winning a significant lead in one group of many is what chance gives, so it is not reported as a lead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench.results import seedstats as stats
from bench.results import uncertainty
from bench.results.seedstats import holm  # noqa: F401 - one Holm for the gate and the report
from report.metrics import _nan_free, strategy_cells
from report.vocabulary import Predictions, is_final, strategy_sort_key

ALPHA = 0.05
MIN_BLOCKS = 3  # Friedman over fewer groups has (almost) no power and its chi-square approximation is meaningless
METRICS = ("accuracy", "macro_f1")
GROUP = ["task", "backbone", "fraction"]
_NUMERIC = ["fraction", "seed", "accuracy", "macro_f1", "wall_time_s", "n_test"]


@dataclass(frozen=True)
class StrategyResult:
    """One strategy in one group. ``low``/``high``: bootstrap interval of the mean (``method`` says over what);
    ``p`` is Holm-adjusted; ``significant`` is None for the best and when undecided."""

    strategy: str
    rank: int
    mean: float
    low: float
    high: float
    n: int  # seeds
    diff: float  # mean - best mean (<= 0)
    p: float
    significant: bool | None
    wall_time_s: float
    cost_ratio: float  # mean wall time / the best strategy's mean wall time
    n_test: int = 0  # test examples behind the interval (0: unknown)
    method: str = ""  # what the interval resamples (uncertainty.Estimate.method)
    diff_low: float = math.nan  # interval of diff (paired when the group is)
    diff_high: float = math.nan
    p_beats_best: float = math.nan  # bootstrap probability of scoring above the best

    def n_label(self) -> str:
        """``3 seeds × 500 test``."""
        return uncertainty.Estimate(self.mean, self.low, self.high, self.n, self.n_test, self.method).n_label()


@dataclass(frozen=True)
class GroupVerdict:
    """The ranking of one task × backbone × fraction. ``status``: decided, undecided (n < 2) or single."""

    task: str
    backbone: str
    fraction: float
    metric: str
    status: str
    results: list[StrategyResult]
    paired: bool = False  # differences paired on test examples (every cell kept its predictions)
    comparison: uncertainty.Comparison | None = field(default=None, repr=False, compare=False)

    @property
    def best(self) -> str:
        return self.results[0].strategy

    @property
    def tied(self) -> list[str]:
        """The best and every strategy whose gap to it is not significant (all of them when undecided)."""
        return uncertainty.tied_for_best([r.strategy for r in self.results], [bool(r.significant)
                                                                              for r in self.results])

    def difference(self, a: str, b: str) -> uncertainty.Difference | None:
        """``a − b`` on this group's bootstrap (None when one of them did not run here)."""
        if self.comparison is None or a not in self.comparison.samples or b not in self.comparison.samples:
            return None
        return self.comparison.difference(a, b)

    @property
    def lead_significant(self) -> bool:
        """The best is significantly above every other strategy of the group."""
        others = self.results[1:]
        return self.status == "decided" and bool(others) and all(r.significant for r in others)


@dataclass(frozen=True)
class RankTest:
    """Friedman + Nemenyi over the complete groups at one label fraction (``p`` NaN when not tested)."""

    fraction: float
    strategies: list[str]
    blocks: int
    mean_ranks: pd.Series  # strategy -> average rank over the blocks, 1 = best
    test: str = ""  # "Friedman" (k >= 3) or "sign test" (k == 2: Friedman needs three samples)
    statistic: float = math.nan
    p: float = math.nan
    cd: float = math.nan  # Nemenyi critical difference of average ranks at ALPHA
    nemenyi: pd.DataFrame | None = None  # pairwise p-values, only after a significant omnibus test
    reason: str = ""  # why not tested
    left_out: list[str] = field(default_factory=list)  # strategies present in too few groups

    @property
    def tested(self) -> bool:
        return math.isfinite(self.p)

    @property
    def significant(self) -> bool:
        return self.tested and self.p < ALPHA


@dataclass(frozen=True)
class Verdict:
    groups: list[GroupVerdict]
    ranks: pd.DataFrame  # strategy × fraction: average rank over the complete groups (NaN: not ranked there)
    friedman: dict[float, RankTest]
    sentences: list[str]
    alpha: float = ALPHA
    beats: dict[float, pd.DataFrame] = field(default_factory=dict)  # fraction -> P(row beats column)

    def table(self) -> pd.DataFrame:
        """The per-group rankings as one long table (one row per group × strategy), e.g. for CSV."""
        rows = [{"task": g.task, "backbone": g.backbone, "fraction": g.fraction, "metric": g.metric,
                 "status": g.status, "paired": g.paired, "tied_for_best": r.strategy in g.tied, **r.__dict__}
                for g in self.groups for r in g.results]
        return pd.DataFrame(rows)


def fraction_label(fraction: float) -> str:
    """``0.02`` -> ``2 % labels``; a missing fraction reads as ``all labels``."""
    if not isinstance(fraction, (int, float)) or not math.isfinite(fraction):
        return "all labels"
    return f"{fraction * 100:g} % labels"


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The finished ``final`` rows with the columns the verdict reads (a frame without ``role``: all final)."""
    out = pd.DataFrame(index=frame.index)
    for col in ("cell", "task", "backbone", "strategy", "status", "main_metric", "role"):
        out[col] = frame[col] if col in frame.columns else None
    for col in _NUMERIC:
        out[col] = pd.to_numeric(frame[col], errors="coerce").astype(float) if col in frame.columns else math.nan
    for col in ("task", "backbone", "strategy"):
        out[col] = out[col].fillna("?").astype(str)
    return out[is_final(out) & (out["status"] == "ok")].reset_index(drop=True)


def _metric(cells: pd.DataFrame) -> str:
    names = cells["main_metric"].dropna()
    name = names.mode().iloc[0] if len(names) else "accuracy"
    return name if name in METRICS else "accuracy"


def group_verdict(key: tuple, cells: pd.DataFrame, alpha: float = ALPHA, predictions: Predictions | None = None,
                  comparison: uncertainty.Comparison | None = None) -> GroupVerdict:
    """Rank the strategies of one group (rows of ``final_rows`` with the same task, backbone and fraction).

    ``predictions`` (cell key → ``CellPredictions``) pairs the strategies on test examples where every cell of
    the group has them; without, each interval uses the binomial test model (see ``bench.results.uncertainty``).
    ``comparison``: that bootstrap, when the caller already computed it for the same rows and metric.
    """
    metric = _metric(cells)
    per: dict[str, uncertainty.StrategyCells] = {}
    times: dict[str, float] = {}
    for strategy, rows in cells.groupby("strategy", sort=False):
        found = strategy_cells(rows, metric, predictions)
        if found.seeds:
            per[str(strategy)] = found
            wall = stats.finite(rows["wall_time_s"])
            times[str(strategy)] = float(wall.mean()) if wall.size else math.nan
    if comparison is None or set(comparison.estimates) != set(per):  # the same key as tables.group_comparisons
        comparison = uncertainty.compare_metrics({metric: per}, key=tuple(key))[metric]
    est = comparison.estimates
    order = sorted(per, key=lambda s: (-est[s].mean, strategy_sort_key(s)))
    best_time = times[order[0]]
    # two-sided, Holm over every pair: the best was chosen by the data, see the module docstring
    diffs, adjusted = comparison.versus_best(order)
    results = []
    for rank, (strategy, p, d) in enumerate(zip(order, adjusted, diffs), 1):
        e, time_s = est[strategy], times[strategy]
        ratio = time_s / best_time if math.isfinite(time_s) and best_time > 0 else math.nan
        results.append(StrategyResult(
            strategy, rank, e.mean, e.low, e.high, e.n_seeds, e.mean - est[order[0]].mean, p,
            bool(p < alpha) if math.isfinite(p) else None, time_s, ratio, e.n_test, e.method,
            d.low if d else math.nan, d.high if d else math.nan, d.p_beats if d else math.nan))
    status = "single" if len(order) == 1 else ("decided" if any(math.isfinite(p) for p in adjusted) else "undecided")
    task, backbone, fraction = key
    return GroupVerdict(str(task), str(backbone), float(fraction), metric, status, results, comparison.paired,
                        comparison)


def beat_probabilities(groups: list[GroupVerdict]) -> pd.DataFrame:
    """P(row strategy beats column strategy): each group's bootstrap probability, averaged over the groups where
    both ran (NaN where they never met)."""
    sums: dict[tuple[str, str], list[float]] = {}
    for g in groups:
        if g.comparison is not None and g.status == "decided":
            for pair, value in g.comparison.beat_matrix().items():
                sums.setdefault(pair, []).append(value)
    names = sorted({s for pair in sums for s in pair}, key=strategy_sort_key)
    table = pd.DataFrame(math.nan, index=pd.Index(names, name="strategy"), columns=names)
    for (a, b), values in sums.items():
        table.loc[a, b] = float(np.mean(values))
    return table


def _block_matrix(groups: list[GroupVerdict]) -> tuple[pd.DataFrame, list[str]]:
    """Groups × strategies of mean main metric, restricted to complete blocks.

    A strategy present in fewer than half of the groups is left out (it would otherwise remove most blocks);
    then every group missing one of the remaining strategies is dropped, as Friedman needs complete blocks.
    """
    means = pd.DataFrame([{**{r.strategy: r.mean for r in g.results}, "_g": (g.task, g.backbone)} for g in groups])
    means = means.set_index("_g")
    present = means.notna().sum()
    keep = sorted((s for s in means.columns if present[s] * 2 >= len(means)), key=strategy_sort_key)
    left_out = sorted(set(means.columns) - set(keep), key=strategy_sort_key)
    return means[keep].dropna(), left_out


def rank_test(fraction: float, groups: list[GroupVerdict], alpha: float = ALPHA) -> RankTest:
    """Average ranks, the omnibus test and the Nemenyi post-hoc at one label fraction."""
    import scikit_posthocs as sp  # imports pyplot (not used here): only load it when a verdict is computed

    blocks, left_out = _block_matrix(groups)
    k, n = blocks.shape[1], blocks.shape[0]
    ranks = blocks.rank(axis=1, ascending=False, method="average").mean() if n else pd.Series(dtype=float)
    base = dict(fraction=fraction, strategies=list(blocks.columns), blocks=n, mean_ranks=ranks, left_out=left_out)
    if k < 2:
        return RankTest(**base, reason="fewer than two strategies to compare")
    if n < MIN_BLOCKS:
        return RankTest(**base, reason=f"not enough groups to test ({n} complete, Friedman needs ≥ {MIN_BLOCKS})")
    values = blocks.to_numpy(float)
    if np.all(values == values[:, :1]):
        return RankTest(**base, reason="all strategies tie in every group")
    if k == 2:  # Friedman with two strategies is the sign test; scipy's Friedman wants three
        wins, losses = int((values[:, 0] > values[:, 1]).sum()), int((values[:, 0] < values[:, 1]).sum())
        test, statistic, p = "sign test", float(wins), float(sps.binomtest(wins, wins + losses).pvalue)
    else:
        result = sps.friedmanchisquare(*values.T)
        test, statistic, p = "Friedman", float(result.statistic), float(result.pvalue)
    # Demšar's CD = q_alpha * sqrt(k(k+1) / 6N), q_alpha = studentized range quantile / sqrt(2)
    cd = float(sps.studentized_range.ppf(1 - alpha, k, np.inf) * math.sqrt(k * (k + 1) / (12 * n)))
    nemenyi = None
    if p < alpha:  # post-hoc only after the omnibus test rejects (Demšar 2006)
        nemenyi = sp.posthoc_nemenyi_friedman(blocks.reset_index(drop=True))
    return RankTest(**base, test=test, statistic=statistic, p=p, cd=cd, nemenyi=nemenyi)


def _fractions(groups: list[GroupVerdict]) -> list[float]:
    seen = sorted({g.fraction for g in groups if math.isfinite(g.fraction)})
    return seen + ([math.nan] if any(not math.isfinite(g.fraction) for g in groups) else [])


def _at_fraction(groups: list[GroupVerdict], fraction: float) -> list[GroupVerdict]:
    if math.isnan(fraction):
        return [g for g in groups if math.isnan(g.fraction)]
    return [g for g in groups if g.fraction == fraction]


def compute_verdict(frame: pd.DataFrame, alpha: float = ALPHA, predictions: Predictions | None = None,
                    comparisons: dict[tuple, uncertainty.Comparison] | None = None) -> Verdict:
    """The verdict for a results frame (as ``bench.results.load_results`` returns it, or normalised).

    Args:
        frame: results rows; only ``role == 'final'`` (or no role column) rows with status ``ok`` count.
        alpha: significance level of every test.
        predictions: cell key → ``CellPredictions`` (``bench.results.predictions.read_many``); groups whose cells
            all have them get intervals and tests paired on test examples.
        comparisons: ``report.tables.group_comparisons`` of the same final rows, to reuse its bootstrap.

    Returns:
        A ``Verdict``: per-group rankings, average ranks per fraction, the rank tests and the sentences.
    """
    rows = final_rows(frame)
    comparisons = comparisons or {}
    groups = [group_verdict(key, cells, alpha, predictions,
                            comparisons.get((key[0], key[1], _nan_free(key[2]), _metric(cells))))
              for key, cells in rows.groupby(GROUP, dropna=False, sort=False)
              if stats.finite(cells[_metric(cells)]).size]
    groups.sort(key=lambda g: (g.task, g.backbone, g.fraction if math.isfinite(g.fraction) else math.inf))
    tests = {f: rank_test(f, _at_fraction(groups, f), alpha) for f in _fractions(groups)}
    strategies = sorted({r.strategy for g in groups for r in g.results}, key=strategy_sort_key)
    ranks = pd.DataFrame({fraction_label(f): t.mean_ranks for f, t in tests.items()}, index=strategies)
    ranks.index.name = "strategy"
    beats = {f: beat_probabilities(_at_fraction(groups, f)) for f in tests}
    verdict = Verdict(groups, ranks, tests, [], alpha, beats)
    verdict.sentences.extend(sentences(verdict))
    return verdict


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def sentences(verdict: Verdict) -> list[str]:
    """Plain-language lines: per fraction, who wins how often, whether that lead is real, and the rank test."""
    out = []
    for fraction, test in verdict.friedman.items():
        at, groups = fraction_label(fraction), _at_fraction(verdict.groups, fraction)
        compared = [g for g in groups if g.status != "single"]
        if not compared:
            out.append(f"At {at} only one strategy has results in each group: nothing to compare.")
            continue
        decided = [g for g in compared if g.status == "decided"]
        if not decided:
            out.append(f"With one seed per strategy and neither per-example predictions nor the test size, nothing "
                       f"can be decided at {at}; run at least two seeds.")
            continue
        wins = pd.Series([g.best for g in compared]).value_counts()
        top = int(wins.iloc[0])
        leaders = sorted(wins.index[wins == top], key=lambda s: (test.mean_ranks.get(s, math.inf),
                                                                 strategy_sort_key(s)))
        winner = leaders[0]
        line = f"At {at} {winner} ranks first in {top} of {_count(len(compared), 'group')}"
        leads = [g for g in decided if g.best == winner and g.lead_significant]
        # a lead counts only if more groups show it than chance would at level alpha (binomial test)
        # (one group alone: its own test already holds at alpha)
        beyond_chance = bool(leads) and (len(decided) == 1 or sps.binomtest(
            len(leads), len(decided), verdict.alpha, alternative="greater").pvalue < verdict.alpha)
        if beyond_chance:
            runner = pd.Series([g.results[1].strategy for g in leads]).mode().iloc[0]
            line += f"; its lead over {runner} (and every other strategy) is significant in {len(leads)}."
        elif leads:
            line += (f"; a clear lead in {len(leads)} of {len(decided)} groups is no more than noise gives "
                     "by chance.")
        else:
            line += "; its lead is within noise (seeds and test examples)."
        if len(decided) < len(compared):
            line += f" {_count(len(compared) - len(decided), 'group')} with one seed stay undecided."
        out.append(line)
        out.append(_tied_sentence(at, decided, verdict.beats.get(fraction), winner))
        out.append(_rank_sentence(at, test))
    if not out:
        out.append("No finished final runs yet: no verdict.")
    return out


def _tied_sentence(at: str, decided: list[GroupVerdict], beats: pd.DataFrame | None, winner: str) -> str:
    """How often each strategy is tied for best, and how likely the winner beats each other strategy."""
    tied = pd.Series([s for g in decided for s in g.tied]).value_counts()
    names = sorted(tied.index, key=lambda s: (-tied[s], strategy_sort_key(s)))
    line = (f"Tied for best at {at} (the best, or within noise of it): "
            + ", ".join(f"{s} in {tied[s]}" for s in names) + f" of {_count(len(decided), 'group')}")
    if beats is not None and winner in beats.index:
        odds = [(s, beats.loc[winner, s]) for s in beats.columns if s != winner and math.isfinite(beats.loc[winner, s])]
        if odds:
            line += (f"; {winner} beats " + ", ".join(f"{s} with probability {p:.2f}" for s, p in odds)
                     + " (bootstrap, averaged over groups)")
    return line + "."


def _rank_sentence(at: str, test: RankTest) -> str:
    if not test.tested:
        return f"Across groups at {at}: {test.reason}, so ranks are not compared statistically."
    head = f"Across the {test.blocks} complete groups at {at} ({test.test} p = {test.p:.3g})"
    if not test.significant:
        return head + ", the strategies' ranks do not differ beyond chance."
    best = test.mean_ranks.idxmin()
    clear = [s for s in test.strategies if s != best and test.nemenyi is not None
             and test.nemenyi.loc[best, s] < ALPHA]
    line = (head + f", ranks differ: {best} has the best average rank ({test.mean_ranks[best]:.2f}; "
            f"critical difference {test.cd:.2f})")
    if clear:
        return line + f" and ranks significantly ahead of {', '.join(clear)} (Nemenyi)."
    return line + ", but no strategy ranks significantly behind it (Nemenyi)."
