"""Suite files (YAML) and their expansion into cells.

A cell is one run: task × backbone × strategy (with one point of its parameter grid) × label fraction × seed. Its
key is a stable hash of everything that changes the outcome, so rerunning a suite resumes it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.results import roles
from bench.plan import registry
from bench.backbones import resolve_backbone
from bench.core.errors import UserError
from bench.plan.params import SHARED, Param, shared_defaults, strategy_params
from bench.plan.document import NAME_PATTERN, validate_document
from bench.plan.search import SearchSpec, parse_budget, parse_search, split_overrides
from bench.plan.backbone_entries import parse_backbone_entry
from bench.plan.sources import check_sources

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"  # bench/suites
@dataclass(frozen=True)
class Cell:
    task: str
    backbone: str
    strategy: str
    seed: int
    fraction: float
    params: dict[str, Any] = field(hash=False)
    versions: tuple[str, str] = ("1", "1")  # (task plugin version, strategy plugin version)
    # Hyperparameter search (bench.plan.search): a 'search' trial or a 'final' cell. Only a trial's role and number
    # enter the key, so suites without search keep their keys; the selection notes are carried to the row only.
    role: str = roles.FINAL
    trial: int | None = None
    selected_from: str | None = field(default=None, compare=False)
    search_note: str | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        ident = {"task": self.task, "backbone": self.backbone, "strategy": self.strategy, "seed": self.seed,
                 "fraction": self.fraction, "params": self.params, "plugin_versions": list(self.versions)}
        if self.role in roles.TRIALS:  # trials (bench.plan.search, bench.advise.race) are their own cells
            ident |= {"role": self.role, "trial": self.trial}
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def label(self) -> str:
        trial = f" · trial {self.trial}" if self.role in roles.TRIALS else ""
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
    search: SearchSpec | None = None  # bench.plan.search: the same search for every strategy, then every seed
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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file (expected a YAML suite)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise UserError(f"{path}: malformed YAML{where}: {problem}") from None
    except RecursionError:
        raise UserError(f"{path}: YAML nested too deeply to be a suite") from None
    return parse_suite(raw, default_name=path.stem, where=str(path), base_dir=path.parent)


def parse_suite(raw: Any, default_name: str = "suite", where: str = "suite", base_dir: Path | None = None) -> Suite:
    """Validate a suite document; every problem is one UserError line naming the key, the value and the fix.

    The document's shape is checked by the schema (``bench.plan.document``); names by the registry and the backbone
    resolvers; parameter values against their declarations (``bench.plan.params``).
    """
    doc = validate_document(raw, where)
    if doc.name is None and not re.fullmatch(NAME_PATTERN, default_name):
        default_name = re.sub(r"[^A-Za-z0-9._-]+", "-", default_name).strip(".-") or "suite"
    tasks = [_task_name(entry, where, base_dir) for entry in doc.tasks]
    # A mapping entry is a source-pretrained backbone (bench.run.pretrain); strings are backbone names.
    backbones = [parse_backbone_entry(entry, where) for entry in doc.backbones]
    suite = Suite(name=doc.name or default_name, tasks=tasks, backbones=backbones, strategies=list(doc.strategies),
                  seeds=list(doc.seeds), fractions=[float(f) for f in doc.fractions], params=doc.params,
                  strategy_params=doc.strategy_params, backbone_params=doc.backbone_params,
                  description=doc.description, check=doc.check)
    for kind, names in (("task", suite.tasks), ("strategy", suite.strategies)):
        for name in names:
            registry.get(kind, name)
    for name in suite.backbones:
        resolve_backbone(name)
    # The search blocks (bench.plan.search) come out of strategy_params before their values are checked.
    suite.strategy_params, overrides = split_overrides(suite.strategy_params)
    suite.search = parse_search(doc.search, where, suite.strategies, overrides)
    suite.budget_steps = parse_budget(doc.budget, where)
    _check_values(suite, where)
    # strategies that learn from a second task (bench.plan.sources)
    check_sources(suite.tasks, suite.strategies, lambda strategy: [suite.params, *suite.backbone_params.values(),
                                                                   suite.strategy_params.get(strategy, {})], where)
    return suite


def _task_name(entry: Any, where: str, base_dir: Path | None) -> str:
    """A built-in task's name, or a user-data task declared inline (registered for this process and its workers)."""
    if isinstance(entry, str):
        return entry
    from bench.owndata import make_task

    task = make_task(entry, base_dir=base_dir)
    if task.name in registry.plugins("task"):
        raise UserError(f"{where}: task name {task.name!r} is taken by a built-in task; give your task another name")
    registry.declare_task(task.spec)
    return task.name


def _check_values(suite: Suite, where: str) -> None:
    """Every parameter value against its declaration: shared ones, then each strategy's own."""
    strategies = {name: strategy_params(registry.get("strategy", name)) for name in suite.strategies}
    for key, value in suite.params.items():
        if key not in SHARED:
            raise UserError(f"{where}: unknown parameter {key!r} in 'params'; shared parameters: {', '.join(SHARED)}"
                            " (strategy-specific ones go under strategy_params)")
        SHARED[key].check(f"params.{key}", value, where)
    for name, values in suite.backbone_params.items():
        if name not in suite.backbones:
            raise UserError(f"{where}: backbone_params names {name!r}, which is not in 'backbones'")
        known = dict(SHARED)
        for own in strategies.values():
            known.update(own)
        for key, value in values.items():
            if key not in known:
                raise UserError(f"{where}: backbone_params.{name}: {key!r} is not a parameter of the suite's "
                                f"strategies; valid: {', '.join(sorted(known))}")
            known[key].check(f"backbone_params.{name}.{key}", value, where)
    for name, grid in suite.strategy_params.items():
        if name not in suite.strategies:
            raise UserError(f"{where}: strategy_params names {name!r}, which is not in 'strategies'")
        valid = SHARED | strategies[name]
        for key, values in grid.items():
            if key not in valid:
                raise UserError(f"{where}: strategy {name!r} has no parameter {key!r}; "
                                f"valid: {', '.join(sorted(valid))}")
            for value in values if isinstance(values, list) else [values]:
                valid[key].check(f"strategy_params.{name}.{key}", value, where)


def _grid(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Cartesian product over list-valued entries (benchopt's parameter grids)."""
    keys = list(params)
    values = [v if isinstance(v, list) else [v] for v in params.values()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def _own(params: dict[str, Any], strategy_parameters: dict[str, Param]) -> dict[str, Any]:
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
                declared = strategy_params(strategy)
                base = (shared_defaults() | {k: spec.default for k, spec in declared.items()}
                        | backbone.defaults.get("*", {}) | backbone.defaults.get(strategy_name, {}) | suite.params
                        | _own(suite.backbone_params.get(backbone_name, {}), declared))
                if suite.budget_steps is not None:
                    base = base | {"budget_steps": suite.budget_steps}
                own = {k: list(spec.grid) for k, spec in declared.items() if len(spec.grid) > 1}
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
