"""Source pretraining: train a timm architecture on a source task once, cache its weights, record the run.

The pretraining step needs the shared loop (``bench.run.train.fit`` through ``CellContext.train_and_test``), so it
lives here, one layer above the backbones; ``bench.backbones.pretrained_source`` only reads the weights file this
module returns (importing this module installs ``ensure_pretrained`` as its ``PRETRAINER``).

Weights are cached at ``<cache>/weights/source/<name>-<key>.safetensors`` (the classifier left out: source and
target class counts differ), next to a JSON record of the run (curve, times, source accuracy). The key hashes
everything that changes the weights: architecture, source task name + version + data source, the merged
pretraining parameters, the seed and the recipe format. Both files are written atomically, the record last, so a
run killed during pretraining leaves nothing and the next run trains again; present weights are never recomputed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import timm
import torch

from bench.backbones import pretrained_source
from bench.backbones.pretrained_source import FORMAT, SourceSpec, body_state
from bench.backbones.vision import TimmBackbone
from bench.core.errors import UserError
from bench.infra import provenance
from bench.infra.atomic import atomic_path, write_json
from bench.infra.cache import cache_dir
from bench.run import registry
from bench.run.params import SHARED, shared_defaults

ENTRY_KEYS = {"name", "arch", "pretrain"}
PRETRAIN_DEFAULTS = {"lr": 2e-3}  # from-scratch's learning rate: the source model starts from random init


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
        from bench.backbones import resolve_backbone

        resolve_backbone.cache_clear()  # the name now means other weights
    pretrained_source.register(spec)
    return name


def pretrain_params(spec: SourceSpec) -> dict[str, Any]:
    return shared_defaults() | PRETRAIN_DEFAULTS | spec.params


def weights_key(spec: SourceSpec, task_version: str, data_source: str) -> str:
    ident = {"format": FORMAT, "arch": spec.arch, "task": spec.task, "task_version": task_version,
             "data": data_source, "params": pretrain_params(spec), "seed": spec.seed}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:20]


def weights_path(spec: SourceSpec) -> Path:
    """Where the spec's weights live (loads the source task's data to learn its data source)."""
    from bench.run.cell import load_task_data  # cell imports this module: imported here, at call time

    task = registry.get("task", spec.task)
    data = load_task_data(spec.task)
    key = weights_key(spec, task.version, data.source)
    return cache_dir() / "weights" / "source" / f"{spec.name}-{key}.safetensors"


def record_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def ensure_pretrained(spec: SourceSpec, device: torch.device | None = None) -> Path:
    """The weights file of ``spec``: read from the cache, or trained now through the shared loop and cached."""
    path = weights_path(spec)
    if path.is_file() and record_path(path).is_file():
        return path
    from bench.run.cell import load_task_data
    from bench.run.context import CellContext

    device = device or provenance.pick_device(None)
    task = registry.get("task", spec.task)
    data = load_task_data(spec.task)
    params = pretrain_params(spec)
    torch.manual_seed(spec.seed)
    model = timm.create_model(spec.arch, pretrained=False, num_classes=task.metadata.num_classes)
    transforms = TimmBackbone(spec.arch, spec.arch)  # the same preprocessing the target cells will use
    ctx = CellContext(task, data, transforms, params, spec.seed, 1.0, device)
    model = transforms.prepare_model(model, device)
    outcome = ctx.train_and_test(model, [{"params": list(model.parameters()), "lr": params["lr"]}])
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(body_state(model), str(tmp))
    record = {"role": "pretrain", "backbone": spec.name, "arch": spec.arch, "task": spec.task,
              "seed": spec.seed, "params": params, "weights": path.name, "data_source": data.source,
              "depth": pretrained_source.arch_depth(spec.arch), "status": "ok", **ctx.sizes,
              **{k: getattr(outcome, k) for k in ("accuracy", "macro_f1", "val_accuracy", "curve", "best_epoch",
                                                  "train_time_s", "eval_time_s")},
              "epochs_run": outcome.epochs_run, **provenance.snapshot(device)}
    write_json(record_path(path), record)
    return path


def pretraining_record(spec: SourceSpec) -> dict[str, Any]:
    """The JSON record of the spec's pretraining run (pretraining first when absent)."""
    path = ensure_pretrained(spec)
    return json.loads(record_path(path).read_text(encoding="utf-8"))


def record_pretraining(spec: SourceSpec, results_dir: Path) -> dict[str, Any]:
    """Pretrain when needed and write the run's row (role ``pretrain``) to ``results_dir/pretrain/``."""
    row = pretraining_record(spec)
    write_json(Path(results_dir) / "pretrain" / f"{Path(row['weights']).stem}.json", row)
    return row


def source_specs(backbones: list[str]) -> list[SourceSpec]:
    """The registered source-pretrained backbones among ``backbones``."""
    return [pretrained_source._SPECS[b] for b in backbones if b in pretrained_source._SPECS]


pretrained_source.PRETRAINER = ensure_pretrained
