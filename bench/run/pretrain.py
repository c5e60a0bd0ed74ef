"""Source pretraining: train a timm architecture on a source task once, cache its weights, record the run.

The pretraining step needs the shared loop (``bench.run.train.fit`` through ``CellContext.train_and_test``), so it
lives here, one layer above the backbones; ``bench.backbones.pretrained_source`` only reads the weights file this
module returns, once ``install_pretrainer()`` has made ``ensure_pretrained`` its ``PRETRAINER`` (``run_cell`` and
the estimates call it; the suite reader only registers the backbone).

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
from bench.infra import provenance
from bench.infra.atomic import atomic_path, write_json
from bench.infra.cache import cache_dir
from bench.results import roles
from bench.plan import registry
from bench.run.context import RunContext
from bench.plan.params import shared_defaults
from bench.run.taskdata import load_task_data

PRETRAIN_DEFAULTS = {"lr": 2e-3}  # from-scratch's learning rate: the source model starts from random init


def pretrain_params(spec: SourceSpec) -> dict[str, Any]:
    return shared_defaults() | PRETRAIN_DEFAULTS | spec.params


def weights_key(spec: SourceSpec, task_version: str, data_source: str) -> str:
    ident = {"format": FORMAT, "arch": spec.arch, "task": spec.task, "task_version": task_version,
             "data": data_source, "params": pretrain_params(spec), "seed": spec.seed}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:20]


def weights_path(spec: SourceSpec) -> Path:
    """Where the spec's weights live (loads the source task's data to learn its data source)."""
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
    device = device or provenance.pick_device(None)
    task = registry.get("task", spec.task)
    data = load_task_data(spec.task)
    params = pretrain_params(spec)
    torch.manual_seed(spec.seed)
    model = timm.create_model(spec.arch, pretrained=False, num_classes=task.metadata.num_classes)
    transforms = TimmBackbone(spec.arch, spec.arch)  # the same preprocessing the target cells will use
    ctx = RunContext(task, data, transforms, params, spec.seed, 1.0, device)
    model = transforms.prepare_model(model, device)
    outcome = ctx.train_and_test(model, [{"params": list(model.parameters()), "lr": params["lr"]}])
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(body_state(model), str(tmp))
    record = {"role": roles.PRETRAIN, "backbone": spec.name, "arch": spec.arch, "task": spec.task,
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



def install_pretrainer() -> None:
    """Make source-pretrained backbones train their weights through ``ensure_pretrained`` when the cache has none
    (the backbones layer cannot import the training loop; this hands it down, once per process)."""
    pretrained_source.PRETRAINER = ensure_pretrained
