"""Hyperparameter search (VTAB's protocol): the suite's ``search:`` and ``budget:`` blocks, and Optuna's
bookkeeping for one group of cells (task × backbone × strategy × fraction).

Every trained strategy gets the same search on validation: trials are ordinary cells (role ``search``) on the
first seed of the suite; the trial with the best validation main metric is then run on every seed (role
``final``), and test is scored once per final cell. Optuna samples; nothing here is a sampler.

Trial ``k`` of a group is always asked from a fresh study holding trials ``0..k-1`` and a sampler seeded by the
search seed, the group and (random, TPE) ``k``: with the grid and random samplers its parameters therefore depend
only on ``k``, never on how many trials ran at once or whether the run was interrupted and resumed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Union

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from bench.core.errors import UserError
from bench.plan import registry
from bench.plan.params import SHARED

__all__ = ["Range", "SearchSpec", "StrategySearch", "TrialResult", "best_trial", "parse_budget", "parse_search",
           "split_overrides", "suggest", "trial_value"]

SAMPLERS = ("grid", "random", "tpe")
KEYS = ("sampler", "trials", "seed", "space", "refit")
OVERRIDE_KEYS = ("space", "trials")
EXAMPLE = "search: {sampler: grid, trials: 4, space: {lr: [0.001, 0.01]}}"

optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line per suggestion


@dataclass(frozen=True)
class Range:
    """A numeric range ``{low, high, log}``; integers when both bounds are integers."""

    low: float
    high: float
    log: bool = False

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)


Dimension = Union[list, Range]  # a list: categorical choices (the grid sampler's values)


@dataclass(frozen=True)
class StrategySearch:
    """The search one strategy runs: its part of the space, its number of trials, the sampler and its seed."""

    sampler: str
    trials: int
    seed: int
    space: dict[str, Dimension]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {name: _distribution(dim) for name, dim in self.space.items()}


@dataclass
class SearchSpec:
    """The suite's ``search:`` block, with the per-strategy overrides from ``strategy_params.<s>.search``."""

    sampler: str
    trials: int
    seed: int
    space: dict[str, Dimension]
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # strategy -> {"space": ..., "trials": N}

    def for_strategy(self, name: str) -> tuple[StrategySearch | None, str | None]:
        """The search of strategy ``name``, or (None, why it has none): it searches only what it has."""
        names = searchable_names(name)
        override = self.overrides.get(name, {})
        space = {k: v for k, v in self.space.items() if k in names} | override.get("space", {})
        if not space:
            return None, f"no search: {name} has none of the searched hyperparameters ({', '.join(self.space)})"
        trials = int(override.get("trials", self.trials))
        if self.sampler == "grid":
            trials = min(trials, math.prod(len(v) for v in space.values()))  # a grid has no more points than this
        return StrategySearch(self.sampler, trials, self.seed, space), None


@dataclass(frozen=True)
class TrialResult:
    """One asked trial: its number, the sampled parameters, its validation value (None: failed or not run)."""

    number: int
    params: dict[str, Any]
    value: float | None
    cell: str = ""


def searchable_names(strategy: str) -> set[str]:
    """What a strategy can be searched over: ``Strategy.searchable``, where None means shared + its own params."""
    plugin = registry.get("strategy", strategy)
    declared = getattr(plugin, "searchable", None)
    return set(SHARED) | set(plugin.parameters) if declared is None else set(declared)


# --- parsing ------------------------------------------------------------------------------------------------
def split_overrides(strategy_params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate ``strategy_params.<s>.search`` blocks from the parameters: ``(parameters, {strategy: block})``."""
    params, overrides = {}, {}
    for name, grid in strategy_params.items():
        if isinstance(grid, dict) and "search" in grid:
            overrides[name] = grid["search"]
            grid = {k: v for k, v in grid.items() if k != "search"}
        params[name] = grid
    return params, overrides


def parse_search(raw: Any, where: str, strategies: list[str], overrides: dict[str, Any] | None = None
                 ) -> SearchSpec | None:
    """Validate the ``search:`` block (and the per-strategy overrides); every problem is one UserError line.

    Args:
        raw: the block as YAML gave it (None: no search).
        where: the suite file, for messages.
        strategies: the suite's strategies (a hyperparameter must be a shared one or a parameter of one of them).
        overrides: ``{strategy: raw block}`` from ``strategy_params.<strategy>.search``.
    """
    overrides = overrides or {}
    if raw is None:
        if overrides:
            raise UserError(f"{where}: strategy_params.{next(iter(overrides))}.search needs a top-level search: "
                            f"block, e.g. {EXAMPLE}")
        return None
    if not isinstance(raw, dict):
        raise UserError(f"{where}: 'search' must be a mapping, e.g. {EXAMPLE}")
    _no_unknown(raw, KEYS, "search", where)
    known = set(SHARED).union(*(registry.get("strategy", s).parameters for s in strategies))
    space = _space(raw.get("space"), "search.space", where, known)
    sampler = raw.get("sampler", "grid" if all(isinstance(v, list) for v in space.values()) else "tpe")
    if sampler not in SAMPLERS:
        raise UserError(f"{where}: search.sampler {sampler!r} is unknown; use one of {', '.join(SAMPLERS)}")
    _grid_needs_lists(sampler, space, where)
    default_trials = math.prod(len(v) for v in space.values()) if sampler == "grid" else None
    trials = _trials(raw.get("trials", default_trials), "search.trials", where)
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"{where}: search.seed {seed!r} is not an integer")
    if raw.get("refit", False) is not False:
        raise UserError(f"{where}: search.refit: true is not supported yet; drop it (the selected configuration "
                        "is trained on the training split, as in the search)")
    spec = SearchSpec(sampler, trials, seed, space)
    for name, block in overrides.items():
        label = f"strategy_params.{name}.search"
        if name not in strategies:
            raise UserError(f"{where}: {label} names {name!r}, which is not in 'strategies'")
        if not isinstance(block, dict):
            raise UserError(f"{where}: {label} must be a mapping, e.g. {{space: {{lr: [0.01, 0.1]}}, trials: 2}}")
        _no_unknown(block, OVERRIDE_KEYS, label, where)
        parsed: dict[str, Any] = {}
        if "space" in block:
            parsed["space"] = _space(block["space"], f"{label}.space", where, searchable_names(name))
            _grid_needs_lists(sampler, parsed["space"], where)
        if "trials" in block:
            parsed["trials"] = _trials(block["trials"], f"{label}.trials", where)
        spec.overrides[name] = parsed
    return spec


def _grid_needs_lists(sampler: str, space: dict[str, Dimension], where: str) -> None:
    if sampler == "grid" and any(isinstance(v, Range) for v in space.values()):
        raise UserError(f"{where}: the grid sampler needs lists of values, not ranges; give lists or use "
                        "sampler: random or tpe")


def parse_budget(raw: Any, where: str) -> int | None:
    """The ``budget: {steps: N}`` block: optimizer steps for every trained strategy (None: no budget)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"steps"}:
        raise UserError(f"{where}: 'budget' must be a mapping with one key, e.g. budget: {{steps: 500}}")
    steps = raw["steps"]
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise UserError(f"{where}: budget.steps {steps!r} must be a positive integer (optimizer steps per cell)")
    return steps


def _no_unknown(raw: dict, keys: tuple[str, ...], label: str, where: str) -> None:
    unknown = sorted(set(raw) - set(keys), key=str)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} in '{label}'; valid keys: {', '.join(keys)}")


def _trials(value: Any, label: str, where: str) -> int:
    if value is None:
        raise UserError(f"{where}: {label} is missing; give the number of trials, e.g. trials: 8")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserError(f"{where}: {label} {value!r} must be an integer of at least 1")
    return value


def _space(raw: Any, label: str, where: str, known: set[str]) -> dict[str, Dimension]:
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{where}: '{label}' is empty; give at least one hyperparameter, e.g. space: "
                        "{lr: [0.001, 0.01]} or space: {lr: {low: 0.0001, high: 0.1, log: true}}")
    space: dict[str, Dimension] = {}
    for name, value in raw.items():
        if name not in known:
            raise UserError(f"{where}: {label} names unknown hyperparameter {name!r}; valid: "
                            f"{', '.join(sorted(known))}")
        space[name] = _dimension(value, f"{label}.{name}", where)
    return space


def _dimension(value: Any, label: str, where: str) -> Dimension:
    if isinstance(value, list):
        if not value:
            raise UserError(f"{where}: {label} is an empty list; give at least one value")
        if len(set(map(repr, value))) != len(value):
            raise UserError(f"{where}: {label} lists a value twice")
        return value
    if not isinstance(value, dict):
        raise UserError(f"{where}: {label} must be a list of values or a range {{low: L, high: H, log: true}}")
    _no_unknown(value, ("low", "high", "log"), label, where)
    low, high, log = value.get("low"), value.get("high"), value.get("log", False)
    for bound in (low, high):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise UserError(f"{where}: {label} needs numeric low and high, e.g. {{low: 0.0001, high: 0.1}}")
    if not isinstance(log, bool):
        raise UserError(f"{where}: {label}.log must be true or false")
    if low > high:
        raise UserError(f"{where}: {label} has low {low} above high {high}; swap them")
    if log and low <= 0:
        raise UserError(f"{where}: {label} is a log range with low {low} <= 0; give a positive low")
    return Range(low, high, log)


def _distribution(dim: Dimension) -> BaseDistribution:
    if isinstance(dim, list):
        return CategoricalDistribution(dim)
    if dim.integer:
        return IntDistribution(int(dim.low), int(dim.high), log=dim.log)
    return FloatDistribution(float(dim.low), float(dim.high), log=dim.log)


# --- Optuna bookkeeping ---------------------------------------------------------------------------------------
def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "big")


def _sampler(search: StrategySearch, group: str, number: int) -> optuna.samplers.BaseSampler:
    if search.sampler == "grid":  # the grid's shuffled order comes from the seed; trial k takes grid point k
        return optuna.samplers.GridSampler(search.space, seed=_seed(search.seed, group))
    seed = _seed(search.seed, group, number)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def suggest(search: StrategySearch, group: str, history: list[TrialResult]) -> dict[str, Any]:
    """The parameters of the next trial (number ``len(history)``) of ``group``.

    ``history`` is every earlier trial in order, including ones still running (value None); failed and running
    trials enter Optuna's study as failed, so TPE learns only from finished ones.
    """
    study = optuna.create_study(direction="maximize", sampler=_sampler(search, group, len(history)))
    distributions = search.distributions()
    for past in history:
        finished = past.value is not None and math.isfinite(past.value)
        study.add_trial(create_trial(params=past.params, distributions=distributions,
                                     value=past.value if finished else None,
                                     state=TrialState.COMPLETE if finished else TrialState.FAIL))
    trial = study.ask(distributions)
    return dict(trial.params)


def trial_value(row: dict[str, Any] | None) -> float | None:
    """A trial's validation value: ``val_<main metric>`` of an ``ok`` row (val_accuracy if that is missing)."""
    if not row or row.get("status") != "ok":
        return None
    value = row.get(f"val_{row.get('main_metric', 'accuracy')}")
    value = row.get("val_accuracy") if value is None else value
    return float(value) if value is not None and math.isfinite(float(value)) else None


def best_trial(history: list[TrialResult]) -> TrialResult | None:
    """The trial with the best validation value; ties go to the first; failed trials never win (None: all failed)."""
    finished = [t for t in history if t.value is not None]
    return max(finished, key=lambda t: (t.value, -t.number)) if finished else None
