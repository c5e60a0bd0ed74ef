"""Vision backbones pretrained by transferbench itself on a source task (the lectures' "train on MNIST, transfer
to Fashion-MNIST"), used by every strategy exactly like ImageNet weights.

A suite names one as a mapping instead of a string::

    backbones:
      - {name: resnet18-mnist, arch: resnet18, pretrain: {task: mnist, epochs: 5, image_size: 32}}

This module only *reads* such weights. Producing them needs the training loop, which lives in a higher layer
(``bench.run.pretrain``): that module validates the entry, registers its ``SourceSpec`` here, and installs
``PRETRAINER``, the function that returns the weights file (training and caching it once when absent). The
backbone calls it the first time it needs pretrained weights. From-scratch never does: it stays random init.

Worker processes (process pool, Ray) resolve the same names: every registered spec is also written, as JSON, to
the ``TRANSFERBENCH_SOURCE_BACKBONES`` environment variable, which workers inherit (as with extra plugins).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import timm
import torch
from safetensors.torch import load_file
from torch import nn

from bench.backbones.vision import TimmBackbone
from bench.core.errors import SkipCell, UserError
from bench.core.task import TaskMetadata

ENV = "TRANSFERBENCH_SOURCE_BACKBONES"
FORMAT = "1"  # bump when the pretraining recipe changes in a way the spec does not show: new weights


@dataclass(frozen=True)
class SourceSpec:
    """A backbone pretrained on a source task: its suite name, timm architecture, source task, training
    parameters (shared cell parameters such as ``epochs``, ``image_size``, ``lr``) and seed."""

    name: str
    arch: str
    task: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    seed: int = 0

    @property
    def digest(self) -> str:
        """Hash of the spec (everything the suite says about the weights); part of every target cell's key."""
        ident = {"format": FORMAT, "arch": self.arch, "task": self.task, "params": self.params, "seed": self.seed}
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]


# The function that returns the weights file of a spec (installed by bench.run.pretrain).
PRETRAINER: Callable[[SourceSpec], Path] | None = None
_SPECS: dict[str, SourceSpec] = {}


def register(spec: SourceSpec) -> None:
    """Make ``spec.name`` resolvable here and in worker processes started from now on."""
    _SPECS[spec.name] = spec
    os.environ[ENV] = json.dumps([asdict(s) for s in _SPECS.values()], sort_keys=True)


def _specs() -> dict[str, SourceSpec]:
    if not _SPECS and os.environ.get(ENV):  # a worker process: the runner's specs came through the environment
        for entry in json.loads(os.environ[ENV]):
            _SPECS[entry["name"]] = SourceSpec(**entry)
    return _SPECS


def resolve(name: str) -> "SourcePretrainedBackbone | None":
    spec = _specs().get(name)
    return SourcePretrainedBackbone(spec) if spec else None


def arch_depth(arch: str) -> int:
    """Depth of a timm architecture: the number in a ResNet-style name (resnet10t → 10, resnet34 → 34), else the
    count of convolution and linear layers."""
    match = re.match(r"^[a-z]*?resnet[a-z]*?(\d+)", arch)
    if match:
        return int(match.group(1))
    model = timm.create_model(arch, pretrained=False)
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


def classifier_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the model's classifier (not carried from source to target: class counts differ)."""
    head = model.get_classifier()
    names = [n for n, m in model.named_modules() if m is head]
    return {f"{n}.{k}" for n in names for k in head.state_dict()}


class SourcePretrainedBackbone(TimmBackbone):
    """A timm architecture whose pretrained weights come from a transferbench pretraining run."""

    def __init__(self, spec: SourceSpec):
        super().__init__(spec.name, spec.arch, None)
        self.spec = spec
        self.assets = ()
        # The spec's digest enters every cell's parameters, hence its key: new pretraining → new cells. Target cells
        # run at the source's image size unless the suite says otherwise.
        star: dict[str, Any] = {"source_pretrain": spec.digest}
        if spec.params.get("image_size"):
            star["image_size"] = spec.params["image_size"]
        self.defaults = {"*": star}

    def missing_weights(self) -> str | None:
        return None  # transferbench trains them itself on the source task (bench.run.pretrain)

    def describe(self) -> str:
        return f"{self.name} ({self.spec.arch} pretrained on {self.spec.task})"

    @cached_property
    def depth(self) -> int:
        return arch_depth(self.spec.arch)

    @cached_property
    def _weights(self) -> tuple[Path | None, str]:
        if PRETRAINER is None:
            raise UserError(f"backbone {self.name!r} needs its source pretraining; run it through transferbench "
                            "(bench.run.pretrain installs the pretraining step)")
        path = PRETRAINER(self.spec)
        return path, f"pretrained:{self.spec.task}:{path.stem}"

    def _create(self, num_classes: int, pretrained: bool) -> nn.Module:
        model = timm.create_model(self.model_name, pretrained=False, num_classes=num_classes)
        if not pretrained:
            return model
        path, _ = self._weights
        state = load_file(str(path))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - classifier_keys(model):
            raise UserError(f"backbone {self.name!r}: weights {path.name} do not fit {self.model_name} "
                            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}); delete the file")
        return model

    def zero_shot(self, meta: TaskMetadata, params: dict[str, Any]) -> nn.Module:
        raise SkipCell(f"zero-shot: {self.name} has no ImageNet classifier (pretrained on {self.spec.task})")


def body_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights a source model passes on: everything but its classifier, contiguous (safetensors)."""
    drop = classifier_keys(model)
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k not in drop}
