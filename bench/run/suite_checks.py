"""The checks a suite gets when it is read, before any cell runs: one ``UserError`` line naming the problem.

``parse_backbone_entry`` reads a ``backbones`` item (a name, or a source-pretrained backbone's mapping, which it
registers with ``bench.backbones.pretrained_source``); ``check_sources`` checks the second task of strategies
that learn from one (``bench.run.sources``). ``bench.run.suite.parse_suite`` calls both.
"""

from __future__ import annotations

from typing import Any, Callable

import timm

from bench.backbones import pretrained_source, resolve_backbone
from bench.backbones.pretrained_source import SourceSpec
from bench.core.errors import UserError
from bench.run import registry
from bench.run.params import SHARED, strategy_params
from bench.run.sources import label_map, source_names

__all__ = ["parse_backbone_entry", "check_sources"]

ENTRY_KEYS = {"name", "arch", "pretrain"}


def parse_backbone_entry(entry: Any, where: str) -> str:
    """A suite's ``backbones`` item → the backbone name cells use. Strings pass through; a mapping
    ``{name, arch, pretrain: {task, seed?, <shared parameters>}}`` is validated and registered as a
    source-pretrained backbone. Raises UserError with one line naming the problem."""
    if isinstance(entry, str):
        return entry
    if not isinstance(entry, dict):
        raise UserError(f"{where}: backbone {entry!r} must be a name or a mapping {{name, arch, pretrain}}")
    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown or not ENTRY_KEYS <= set(entry):
        raise UserError(f"{where}: backbone entry {entry!r}: needs exactly the keys name, arch, pretrain "
                        "(e.g. {name: resnet18-mnist, arch: resnet18, pretrain: {task: mnist, epochs: 5}})")
    name, arch, pretrain = str(entry["name"]), str(entry["arch"]), entry["pretrain"]
    if not timm.is_model(arch):
        raise UserError(f"{where}: backbone {name!r}: arch {arch!r} is not a timm model name")
    if not isinstance(pretrain, dict) or "task" not in pretrain:
        raise UserError(f"{where}: backbone {name!r}: 'pretrain' must be a mapping with a source 'task'")
    params = {k: v for k, v in pretrain.items() if k not in ("task", "seed")}
    bad = sorted(set(params) - set(SHARED))
    if bad:
        raise UserError(f"{where}: backbone {name!r}: unknown pretrain parameter {bad[0]!r}; "
                        f"valid: task, seed, {', '.join(SHARED)}")
    task = registry.get("task", str(pretrain["task"]))
    if task.metadata.modality != "vision":
        raise UserError(f"{where}: backbone {name!r}: source task {task.name!r} is not a vision task")
    seed = pretrain.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"{where}: backbone {name!r}: pretrain seed {seed!r} is not an integer")
    spec = SourceSpec(name, arch, task.name, params, seed)
    if pretrained_source._SPECS.get(name) not in (None, spec):
        resolve_backbone.cache_clear()  # the name now means other weights
    pretrained_source.register(spec)
    return name



# strategy name -> the parameter mappings that set its cells' values, later ones winning (the suite's ``params``,
# its ``backbone_params`` of each backbone, its ``strategy_params`` of that strategy).
ParamLayers = Callable[[str], list[dict[str, Any]]]


def _values(layers: ParamLayers, strategy: str, key: str) -> list[Any]:
    """Every value ``key`` can take in the suite's cells of ``strategy`` (its default when nothing sets it)."""
    declared = strategy_params(registry.get("strategy", strategy)).get(key)
    found = []
    for values in layers(strategy):
        if key in values:
            found = values[key] if isinstance(values[key], list) else [values[key]]
    if not found:
        found = [declared.default if declared else None]
    return found


def check_sources(tasks: list[str], strategies: list[str], layers: ParamLayers, where: str) -> None:
    """Refuse, in one line, a suite whose source-needing strategies lack a usable source.

    Checked: a strategy with ``needs=("source",)`` has a source; every source names a known task of the target's
    modality; for ``source_classes = "same"`` the classes match (or ``class_map`` maps them onto the target's).
    """
    for name in strategies:
        strategy = registry.get("strategy", name)
        if "source" not in getattr(strategy, "needs", ()):
            continue
        for value in _values(layers, name, "source"):
            names = source_names(value)
            if not names:
                raise UserError(f"{where}: strategy {name!r} needs a source task; add strategy_params: "
                                f"{{{name}: {{source: TASK}}}} (tasks: {', '.join(registry.plugins('task'))})")
            for source in names:
                source_meta = registry.get("task", source).metadata
                for target in tasks:
                    target_meta = registry.get("task", target).metadata
                    if source_meta.modality != target_meta.modality:
                        raise UserError(f"{where}: strategy {name!r}: source {source!r} is a {source_meta.modality} "
                                        f"task, target {target!r} is {target_meta.modality}; use a source of the "
                                        "same modality")
                    if getattr(strategy, "source_classes", "any") == "same":
                        for class_map in _values(layers, name, "class_map"):
                            label_map(source_meta, target_meta, class_map, where)
