"""The regression gate: do new results fall significantly below a baseline?

Rows are grouped into *cell groups* — (task, backbone, strategy, fraction, parameters) — whose seeds are repeated
measurements of one configuration. A group regresses in accuracy when both hold:

- the mean dropped by more than ``tolerance`` (accuracy units: 0.01 = one point), and
- the drop is significant: one-sided Welch t-test (or a bootstrap) of "new < baseline" gives p < ``alpha``,
  after Holm's adjustment over all groups of the run (one suite is dozens of tests at once).

Wall time likewise: the mean grew by more than ``time_ratio`` × (and by at least ``min_time_delta_s``) and the
growth is significant on log times (times are multiplicative, so their noise is closer to normal on a log scale).

Both conditions are needed for a red build one can trust: significance keeps seed noise from failing it, the
tolerance keeps a real but negligible change from failing it. Everything here is a pure function on DataFrames
plus the terminal and Markdown rendering; reading files is bench.gate.baseline's and bench.results' job.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from bench.gate.baseline import environment_of, environment_warnings
from bench.core.errors import UserError
from bench.results import seedstats
from bench.results.roles import final_only
from bench.results.seedstats import holm

IDENTITY = ("task", "backbone", "strategy", "fraction")
TESTS = ("welch", "bootstrap")
CORRECTIONS = ("holm", "none")
FAIL_ON = ("error", "missing", "new")
# Statuses of one comparison, worst first (also the display order).
REGRESSION, SLOWER, NOISE, FEW_SEEDS, OK, IMPROVED, FASTER, NO_DATA = (
    "regression", "slower", "within noise", "too few seeds", "ok", "improved", "faster", "n/a")
ORDER = {s: i for i, s in enumerate((REGRESSION, SLOWER, NOISE, FEW_SEEDS, OK, IMPROVED, FASTER, NO_DATA))}


@dataclass(frozen=True)
class CheckConfig:
    """Gate settings; a suite's ``check:`` mapping and CLI flags fill them (see docs/CHECK.md)."""

    tolerance: float = 0.01
    alpha: float = 0.05
    time_ratio: float = 1.25
    min_time_delta_s: float = 1.0  # sub-second cells are dominated by process start and file-cache effects
    test: str = "welch"
    metric: str = "accuracy"
    time_metric: str | None = "wall_time_s"  # None: do not check time
    fail_on: tuple[str, ...] = ()  # also fail for error rows / missing cells / new cells
    # Holm's correction keeps the chance of a false red build at alpha over all groups of a suite, not per group.
    correction: str = "holm"
    n_boot: int = 10_000


def make_config(settings: Mapping[str, Any] | None = None, where: str = "check settings") -> CheckConfig:
    """Build a validated CheckConfig from a mapping; every problem is one UserError line naming the key."""
    settings = dict(settings or {})
    valid = [f.name for f in fields(CheckConfig)]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(valid)}")
    if isinstance(settings.get("fail_on"), str):
        settings["fail_on"] = [settings["fail_on"]]
    settings["fail_on"] = tuple(settings.get("fail_on") or ())
    try:
        config = CheckConfig(**settings)
        numbers = (config.tolerance, config.alpha, config.time_ratio, config.min_time_delta_s)
        if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in numbers):
            raise ValueError("tolerance, alpha, time_ratio and min_time_delta_s must be numbers")
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: {err}") from None
    if not 0 <= config.tolerance < 1:
        raise UserError(f"{where}: tolerance {config.tolerance} is in accuracy units (0..1): one point is 0.01")
    if not 0 < config.alpha < 1:
        raise UserError(f"{where}: alpha {config.alpha} must lie in (0, 1), e.g. 0.05")
    if config.time_ratio < 1:
        raise UserError(f"{where}: time_ratio {config.time_ratio} must be >= 1, e.g. 1.25")
    if config.test not in TESTS:
        raise UserError(f"{where}: test {config.test!r} is not one of {', '.join(TESTS)}")
    if config.correction not in CORRECTIONS:
        raise UserError(f"{where}: correction {config.correction!r} is not one of {', '.join(CORRECTIONS)}")
    bad = [f for f in config.fail_on if f not in FAIL_ON]
    if bad:
        raise UserError(f"{where}: fail_on {bad[0]!r} is not one of {', '.join(FAIL_ON)}")
    return config


def read_suite_check(results_path: str | Path) -> dict[str, Any]:
    """The ``check:`` mapping of the suite.yaml the runner copied beside the results ({} when there is none)."""
    path = Path(results_path)
    suite_file = (path if path.is_dir() else path.parent) / "suite.yaml"
    if not suite_file.is_file():
        return {}
    try:
        raw = yaml.safe_load(suite_file.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, OSError) as err:
        raise UserError(f"{suite_file}: unreadable suite file ({type(err).__name__})") from None
    check = raw.get("check") if isinstance(raw, dict) else None
    if check is not None and not isinstance(check, dict):
        raise UserError(f"{suite_file}: 'check' must be a mapping such as {{tolerance: 0.01, alpha: 0.05}}")
    return check or {}


def p_value_below(new: Any, base: Any, test: str = "welch", n_boot: int = 10_000, seed: int = 0) -> float:
    """One-sided p-value for "mean(new) < mean(base)"; NaN when a side has fewer than two values.

    With one value per side there is no estimate of seed noise, so nothing can be called significant.
    """
    new, base = seedstats.finite(new), seedstats.finite(base)  # NaN metrics (failed cells) drop out, as in the report
    if test == "welch":
        # The report's Welch test, so gate and report never disagree on a difference: NaN with fewer than two
        # values per side, 0 or 1 when neither side has seed noise (deterministic cells such as zero-shot).
        return seedstats.welch_difference(new, base).p_less
    if len(new) < 2 or len(base) < 2:
        return math.nan
    if np.ptp(new) == 0 and np.ptp(base) == 0:
        return 0.0 if new.mean() < base.mean() else 1.0
    # Percentile bootstrap of the mean difference; the +1 keeps p above zero for a finite number of resamples.
    rng = np.random.default_rng(seed)
    diffs = (new[rng.integers(0, len(new), (n_boot, len(new)))].mean(axis=1)
             - base[rng.integers(0, len(base), (n_boot, len(base)))].mean(axis=1))
    return float((np.sum(diffs >= 0) + 1) / (n_boot + 1))


@dataclass(frozen=True)
class Comparison:
    """One cell group measured on both sides; accuracy in 0..1, times in seconds."""

    key: tuple
    variant: str
    n_base: int
    n_new: int
    base_mean: float
    new_mean: float
    base_sd: float
    new_sd: float
    p_drop: float  # one-sided p of "new < baseline", adjusted for multiple groups (see CheckConfig.correction)
    p_gain: float  # one-sided p of "new > baseline", unadjusted (informational: an improvement never fails)
    status: str = OK
    base_time: float = math.nan
    new_time: float = math.nan
    p_slow: float = math.nan  # one-sided p of "new slower" on log times, adjusted like p_drop
    p_fast: float = math.nan
    time_status: str = NO_DATA

    @property
    def delta(self) -> float:
        return self.new_mean - self.base_mean

    @property
    def time_ratio(self) -> float:
        return self.new_time / self.base_time if self.base_time > 0 else math.nan

    @property
    def label(self) -> str:
        return _label(self.key, self.variant)


@dataclass(frozen=True)
class Note:
    """A cell group that could not be compared (missing, new, errored) and why."""

    label: str
    detail: str


@dataclass
class CheckResult:
    config: CheckConfig
    comparisons: list[Comparison]
    missing: list[Note] = field(default_factory=list)
    new: list[Note] = field(default_factory=list)
    errors: list[Note] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)
    shas: tuple[str, str] = ("", "")  # (baseline, results)

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.status == REGRESSION]

    @property
    def slowdowns(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.time_status == SLOWER]

    def failures(self) -> list[str]:
        """Why the gate fails, one phrase each (empty: it passes)."""
        out = []
        if self.regressions:
            out.append(f"{len(self.regressions)} accuracy regression(s)")
        if self.slowdowns:
            out.append(f"{len(self.slowdowns)} wall-time regression(s)")
        if not self.comparisons:
            out.append("no cell group could be compared")
        for kind, notes in (("error", self.errors), ("missing", self.missing), ("new", self.new)):
            if kind in self.config.fail_on and notes:
                out.append(f"{len(notes)} {kind} cell group(s) (fail_on: {kind})")
        return out

    @property
    def exit_code(self) -> int:
        return 1 if self.failures() else 0


def _label(key: tuple, variant: str = "") -> str:
    task, backbone, strategy, fraction = key[:4]
    return f"{task} · {backbone} · {strategy} · f={fraction:g}" + (f" [{variant}]" if variant else "")


def _params_key(text: Any) -> str:
    """Canonical parameters of a row without its seed, so the seeds of one configuration share a key."""
    try:
        params = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        params = {}
    params = params if isinstance(params, dict) else {}
    params.pop("seed", None)
    return json.dumps(params, sort_keys=True, default=str)


def _prepare(frame: pd.DataFrame, config: CheckConfig, side: str) -> pd.DataFrame:
    needed = [*IDENTITY, "params", "status", config.metric] + ([config.time_metric] if config.time_metric else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise UserError(f"{side} has no column {missing[0]!r}; is it a transferbench results table?")
    # The gate compares what the report reports: final rows (not search trials, pretraining or estimates).
    out = final_only(frame).copy()
    out["fraction"] = pd.to_numeric(out["fraction"], errors="coerce").astype(float).round(10)
    out["pkey"] = out["params"].map(_params_key)
    out[config.metric] = pd.to_numeric(out[config.metric], errors="coerce")
    if config.time_metric:
        out[config.time_metric] = pd.to_numeric(out[config.time_metric], errors="coerce")
    return out


def _values(rows: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.array([])
    values = rows.loc[rows["status"] == "ok", column].to_numpy(dtype=float)
    return values[np.isfinite(values)]


def _param_diff(old: str, new: str) -> str:
    a, b = json.loads(old), json.loads(new)
    return ", ".join(f"{k} {a.get(k, '—')} → {b.get(k, '—')}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))


def _variants(keys: set[tuple]) -> dict[tuple, str]:
    """A short label for groups that share task/backbone/strategy/fraction: the parameters that tell them apart."""
    by_cell: dict[tuple, list[dict]] = {}
    for key in keys:
        by_cell.setdefault(key[:4], []).append(json.loads(key[4]))
    labels = {}
    for key in keys:
        siblings = by_cell[key[:4]]
        differing = sorted({k for p in siblings for k in p if len({json.dumps(q.get(k)) for q in siblings}) > 1})
        params = json.loads(key[4])
        labels[key] = ", ".join(f"{k}={params.get(k, '—')}" for k in differing)
    return labels


def _measure(key: tuple, variant: str, new: pd.DataFrame, base: pd.DataFrame, c: CheckConfig) -> Comparison:
    """Means, spreads and raw one-sided p-values of one group (verdicts come after the correction)."""
    a, b = _values(new, c.metric), _values(base, c.metric)
    sd = [float(np.std(x, ddof=1)) if len(x) > 1 else math.nan for x in (a, b)]
    timing: dict[str, Any] = {}
    ta, tb = _values(new, c.time_metric), _values(base, c.time_metric)
    ta, tb = ta[ta > 0], tb[tb > 0]
    if len(ta) and len(tb):
        timing = {"base_time": tb.mean(), "new_time": ta.mean(), "time_status": OK,
                  "p_slow": p_value_below(np.log(tb), np.log(ta), c.test, c.n_boot),
                  "p_fast": p_value_below(np.log(ta), np.log(tb), c.test, c.n_boot)}
    return Comparison(key, variant, len(b), len(a), float(b.mean()), float(a.mean()), sd[1], sd[0],
                      p_value_below(a, b, c.test, c.n_boot), p_value_below(b, a, c.test, c.n_boot), **timing)


def _judge(comp: Comparison, c: CheckConfig) -> Comparison:
    """Verdicts of one group from its (already adjusted) p-values; see the module docstring."""
    if -comp.delta > c.tolerance:
        status = FEW_SEEDS if math.isnan(comp.p_drop) else REGRESSION if comp.p_drop < c.alpha else NOISE
    else:
        status = IMPROVED if comp.delta > c.tolerance and comp.p_gain < c.alpha else OK
    time_status = comp.time_status
    if time_status != NO_DATA:
        if comp.time_ratio > c.time_ratio and comp.new_time - comp.base_time >= c.min_time_delta_s:
            time_status = FEW_SEEDS if math.isnan(comp.p_slow) else SLOWER if comp.p_slow < c.alpha else NOISE
        else:
            time_status = FASTER if comp.time_ratio < 1 / c.time_ratio and comp.p_fast < c.alpha else OK
    return replace(comp, status=status, time_status=time_status)


def _compare_groups(pairs: list[tuple], c: CheckConfig) -> list[Comparison]:
    comps = [_measure(*pair, c) for pair in pairs]
    if c.correction == "holm":
        # Accuracy and time are two families, each held at alpha: a suite of 45 groups at a per-group 0.05 would
        # give a false red build on most runs.
        p_drop, p_slow = holm([x.p_drop for x in comps]), holm([x.p_slow for x in comps])
        comps = [replace(x, p_drop=pd_, p_slow=ps) for x, pd_, ps in zip(comps, p_drop, p_slow)]
    return [_judge(x, c) for x in comps]


def compare(results: pd.DataFrame, baseline: pd.DataFrame, config: CheckConfig | None = None) -> CheckResult:
    """Compare every cell group of ``results`` with the same group of ``baseline``.

    Raises:
        UserError: a table lacks the needed columns, or no cell group of the results appears in the baseline
            at all (a different suite or changed parameters: there is nothing the gate could vouch for).
    """
    config = config or CheckConfig()
    new, base = _prepare(results, config, "results"), _prepare(baseline, config, "baseline")
    group = [*IDENTITY, "pkey"]
    new_groups = {k: g for k, g in new.groupby(group, sort=True)}
    base_groups = {k: g for k, g in base.groupby(group, sort=True)}
    new_ok = {k for k, g in new_groups.items() if len(_values(g, config.metric))}
    base_ok = {k for k, g in base_groups.items() if len(_values(g, config.metric))}
    if not base_ok:
        raise UserError(f"the baseline has no successful row with a {config.metric!r} value; save it again from "
                        "a run that worked")
    if not set(new_groups) & base_ok:
        raise UserError(f"no cell group of the results is in the baseline ({len(new_groups)} vs {len(base_ok)} "
                        "groups); was the baseline saved from another suite, or did parameters change?")
    variants = _variants(set(new_groups) | set(base_groups))
    pairs = [(k, variants[k], new_groups[k], base_groups[k]) for k in sorted(new_ok & base_ok)]
    result = CheckResult(config, _compare_groups(pairs, config))
    result.comparisons.sort(key=lambda c: (min(ORDER[c.status], ORDER[c.time_status]), c.label))
    for key in sorted(base_ok - new_ok):
        rows = new_groups.get(key)
        if rows is not None and (rows["status"] == "error").any():
            why = f"all {len(rows)} seed(s) failed"
        elif rows is not None and (rows["status"] == "skipped").any():
            why = "skipped: " + str(rows.loc[rows["status"] == "skipped", "error"].iloc[0] or "by the plugin")
        else:
            renamed = [k for k in new_ok - base_ok if k[:4] == key[:4]]
            why = "not in the results" + (f" (parameters differ: {_param_diff(key[4], renamed[0][4])})"
                                          if len(renamed) == 1 else "")
        result.missing.append(Note(_label(key, variants[key]), why))
    for key in sorted(new_ok - base_ok):
        failed = key in base_groups and (base_groups[key]["status"] == "error").any()
        detail = "failed in the baseline" if failed else "not in the baseline"
        result.new.append(Note(_label(key, variants[key]), detail))
    for key, rows in new_groups.items():
        errors = rows[rows["status"] == "error"]
        if len(errors):
            seeds = ", ".join(str(s) for s in sorted(errors["seed"].tolist(), key=str))
            message = str(errors["error"].dropna().iloc[0] if errors["error"].notna().any() else "no message")
            result.errors.append(Note(_label(key, variants[key]), f"seed(s) {seeds}: {message.splitlines()[0]}"))
    result.environment = environment_warnings(environment_of(baseline), environment_of(results))
    result.shas = (", ".join(environment_of(baseline)["git_sha"]), ", ".join(environment_of(results)["git_sha"]))
    return result
