"""Suite files (YAML) and their expansion into cells.

A cell is one run: task × backbone × strategy (with one point of its parameter grid) × label fraction × seed. Its
key is a stable hash of everything that changes the outcome, so rerunning a suite resumes it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.run import registry
from bench.backbones import resolve_backbone
from bench.core.errors import UserError
from bench.run.params import SHARED, shared_defaults
from bench.run.search import SearchSpec, parse_budget, parse_search, split_overrides

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"  # bench/suites
KEYS = {"name", "description", "tasks", "backbones", "strategies", "seeds", "fractions", "params",
        "strategy_params", "backbone_params", "check", "search", "budget"}
REQUIRED = ("tasks", "backbones", "strategies")


@dataclass(frozen=True)
class Cell:
    task: str
    backbone: str
    strategy: str
    seed: int
    fraction: float
    params: dict[str, Any] = field(hash=False)
    versions: tuple[str, str] = ("1", "1")  # (task plugin version, strategy plugin version)
    # Hyperparameter search (bench.run.search): a 'search' trial or a 'final' cell. Only a trial's role and number
    # enter the key, so suites without search keep their keys; the selection notes are carried to the row only.
    role: str = "final"
    trial: int | None = None
    selected_from: str | None = field(default=None, compare=False)
    search_note: str | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        ident = {"task": self.task, "backbone": self.backbone, "strategy": self.strategy, "seed": self.seed,
                 "fraction": self.fraction, "params": self.params, "plugin_versions": list(self.versions)}
        if self.role == "search":
            ident |= {"role": self.role, "trial": self.trial}
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def label(self) -> str:
        trial = f" · trial {self.trial}" if self.role == "search" else ""
        return f"{self.task} · {self.backbone} · {self.strategy} · f={self.fraction:g} · seed={self.seed}{trial}"


@dataclass
class Suite:
    name: str
    tasks: list[str]
    backbones: list[str]
    strategies: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    fractions: list[float] = field(default_factory=lambda: [1.0])
    params: dict[str, Any] = field(default_factory=dict)
    strategy_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Shared parameters per backbone (e.g. more epochs for word vectors than for a CNN in one suite).
    backbone_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""
    check: dict[str, Any] = field(default_factory=dict)
    search: SearchSpec | None = None  # bench.run.search: the same search for every strategy, then every seed
    budget_steps: int | None = None  # optimizer steps per trained cell (epochs follow from the train size)


def find_suite_file(spec: str) -> Path:
    """Accept a path, or the name of a bundled suite (``quick`` → ``bench/suites/quick.yaml``)."""
    path = Path(spec)
    if path.is_file():
        return path
    bundled = SUITES_DIR / f"{spec}.yaml"
    if bundled.is_file():
        return bundled
    names = ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.yaml")))
    raise UserError(f"suite file {spec!r} not found; give a path or one of the bundled suites: {names}")


def load_suite(spec: str) -> Suite:
    path = find_suite_file(spec)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: malformed YAML{where}: {getattr(err, 'problem', err)}") from None
    return parse_suite(raw, default_name=path.stem, where=str(path))


def _as_list(value: Any, key: str, where: str) -> list:
    value = value if isinstance(value, list) else [value]
    if not value:
        raise UserError(f"{where}: '{key}' is empty; give at least one value")
    return value


def parse_suite(raw: Any, default_name: str = "suite", where: str = "suite") -> Suite:
    """Validate a suite mapping; every problem is one UserError line naming the key and the fix."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a suite must be a YAML mapping with keys {', '.join(REQUIRED)}, ...")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(KEYS))}")
    for key in REQUIRED:
        if key not in raw:
            raise UserError(f"{where}: missing key '{key}'")
    suite = Suite(
        name=str(raw.get("name", default_name)),
        tasks=[str(t) for t in _as_list(raw["tasks"], "tasks", where)],
        backbones=[str(b) for b in _as_list(raw["backbones"], "backbones", where)],
        strategies=[str(s) for s in _as_list(raw["strategies"], "strategies", where)],
        seeds=_as_list(raw.get("seeds", [0]), "seeds", where),
        fractions=_as_list(raw.get("fractions", [1.0]), "fractions", where),
        params=raw.get("params") or {},
        strategy_params=raw.get("strategy_params") or {},
        backbone_params=raw.get("backbone_params") or {},
        description=str(raw.get("description", "")),
        check=raw.get("check") or {},
    )
    for seed in suite.seeds:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise UserError(f"{where}: seed {seed!r} is not an integer")
    for frac in suite.fractions:
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac <= 1:
            raise UserError(f"{where}: fraction {frac!r} is outside (0, 1]; use e.g. 0.01, 0.1, 1.0")
    suite.fractions = [float(f) for f in suite.fractions]
    if not isinstance(suite.params, dict) or not isinstance(suite.strategy_params, dict):
        raise UserError(f"{where}: 'params' and 'strategy_params' must be mappings")
    for key in suite.params:
        if key not in SHARED:
            raise UserError(f"{where}: unknown parameter {key!r} in 'params'; shared parameters: {', '.join(SHARED)}"
                            " (strategy-specific ones go under strategy_params)")
    if not isinstance(suite.backbone_params, dict):
        raise UserError(f"{where}: 'backbone_params' must be a mapping of backbone: {{parameter: value}}")
    for name, values in suite.backbone_params.items():
        if name not in suite.backbones:
            raise UserError(f"{where}: backbone_params names {name!r}, which is not in 'backbones'")
        known = set(SHARED).union(*(registry.get("strategy", s).parameters for s in suite.strategies))
        if not isinstance(values, dict) or set(values) - known:
            bad = sorted(set(values) - known) if isinstance(values, dict) else [values]
            raise UserError(f"{where}: backbone_params.{name}: {bad[0]!r} is not a parameter of the suite's "
                            f"strategies; valid: {', '.join(sorted(known))}")
    for name in suite.tasks:
        registry.get("task", name)
    for name in suite.strategies:
        registry.get("strategy", name)
    for name in suite.backbones:
        resolve_backbone(name)
    suite.strategy_params, overrides = split_overrides(suite.strategy_params)
    suite.search = parse_search(raw.get("search"), where, suite.strategies, overrides)
    suite.budget_steps = parse_budget(raw.get("budget"), where)
    for name, grid in suite.strategy_params.items():
        if name not in suite.strategies:
            raise UserError(f"{where}: strategy_params names {name!r}, which is not in 'strategies'")
        if not isinstance(grid, dict):
            raise UserError(f"{where}: strategy_params.{name} must be a mapping of parameter: value(s)")
        valid = set(SHARED) | set(registry.get("strategy", name).parameters)
        for key in grid:
            if key not in valid:
                raise UserError(f"{where}: strategy {name!r} has no parameter {key!r}; "
                                f"valid: {', '.join(sorted(valid))}")
    return suite


def _grid(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Cartesian product over list-valued entries (benchopt's parameter grids)."""
    keys = list(params)
    values = [v if isinstance(v, list) else [v] for v in params.values()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def _own(params: dict[str, Any], strategy_parameters: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``params`` that concern a strategy: shared ones and its own."""
    return {k: v for k, v in params.items() if k in SHARED or k in strategy_parameters}


def expand(suite: Suite) -> list[Cell]:
    """All cells of the suite, in a stable order. Task/backbone pairs of different modality are not cells."""
    cells = []
    for task_name in suite.tasks:
        task = registry.get("task", task_name)
        for backbone_name in suite.backbones:
            backbone = resolve_backbone(backbone_name)
            if backbone.modality != task.metadata.modality:
                continue
            for strategy_name in suite.strategies:
                strategy = registry.get("strategy", strategy_name)
                base = (shared_defaults() | {k: v[0] for k, v in strategy.parameters.items()}
                        | backbone.defaults.get("*", {}) | backbone.defaults.get(strategy_name, {}) | suite.params
                        | _own(suite.backbone_params.get(backbone_name, {}), strategy.parameters))
                if suite.budget_steps is not None:
                    base = base | {"budget_steps": suite.budget_steps}
                own = {k: v for k, v in strategy.parameters.items() if isinstance(v, list) and len(v) > 1}
                for point in _grid(own | suite.strategy_params.get(strategy_name, {})):
                    params = base | point
                    for fraction in suite.fractions:
                        for seed in suite.seeds:
                            cells.append(Cell(task_name, backbone_name, strategy_name, seed, fraction, params,
                                              (task.version, strategy.version)))
    if not cells:
        raise UserError("the suite expands to no cells: no backbone has the modality of any task "
                        "(vision tasks need a timm model name, text tasks a word-vector or transformer backbone)")
    return cells
