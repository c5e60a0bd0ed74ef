"""A suite's ``backbones`` items, checked when the suite is read: a name, or the mapping of a source-pretrained
backbone (``{name, arch, pretrain: {task, ...}}``), validated in one ``UserError`` line and registered with
``bench.backbones.pretrained_source`` (its weights are trained on first use, ``bench.run.pretrain``)."""

from __future__ import annotations

from typing import Any

import timm

from bench.backbones import pretrained_source, resolve_backbone
from bench.backbones.pretrained_source import SourceSpec
from bench.core.errors import UserError
from bench.plan import registry
from bench.plan.params import SHARED

__all__ = ["parse_backbone_entry"]

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
