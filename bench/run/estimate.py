"""Transferability estimates before training: score every task × backbone of a suite from frozen features.

For each task and each backbone of the same modality, and for that backbone's architecture at random
initialisation (``<backbone>@random``, the lower anchor), this computes on the training samples of the cell
"seed 0, the suite's first label fraction" (at most ``samples`` of them, a stratified subset):

* LogME and H-score on the pooled features of the frozen network (the feature cache of ``bench.run.features``,
  shared with the feature-extraction cells: a suite that ran already costs no new forward pass);
* NCE and LEEP on the softmax of the source classifier, where there is one: the ImageNet head of a timm backbone,
  applied to those same features (for the anchor: its random 1000-way head). Text backbones have none.

Each estimate is one results row (``role: "estimate"``, ``strategy: "estimate"``) in ``cells/<key>.json``, written
through ``bench.results`` by the runner's loop (``bench.run.rowloop``): rerunning skips recorded estimates (error rows
are retried), ``force`` recomputes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from bench import results
from bench.backbones import resolve_backbone
from bench.core.backbone import Backbone
from bench.backbones.random_init import RandomInit
from bench.backbones.vision import TimmBackbone
from bench.core.errors import UserError, first_line
from bench.core.splits import stratified_take
from bench.estimate.scores import ESTIMATORS
from bench.results import roles
from bench.infra import provenance
from bench.results.schema import CellRecord, new_row, now_iso
from bench.plan import registry
from bench.plan.params import SHARED
from bench.plan.suite import Suite, expand
from bench.run.context import RunContext
from bench.run.pretrain import install_pretrainer
from bench.run.progress import RunProgress
from bench.run.rowloop import pending, record_rows
from bench.run.taskdata import load_task_data

__all__ = ["ROLE", "STRATEGY", "EstimateCell", "EstimateSummary", "plan_estimates", "estimate_row", "run_estimates"]

ROLE = STRATEGY = roles.ESTIMATE
VERSION = "1"  # bump when what an estimate computes changes: part of every estimate's key
SEED = 0
IMAGENET_CLASSES = 1000
SCORE_COLUMNS = ("logme", "h_score", "nce", "leep")


@dataclass(frozen=True)
class EstimateCell:
    """One estimate: a task × backbone (``random`` for the random-init anchor) at one fraction, seed 0."""

    task: str
    backbone: str  # the suite's backbone name
    random: bool
    fraction: float
    samples: int
    params: dict[str, Any] = field(hash=False)
    task_version: str = "1"
    seed: int = SEED
    strategy: str = STRATEGY

    @property
    def label_backbone(self) -> str:
        return self.backbone + ("@random" if self.random else "")

    @property
    def key(self) -> str:
        ident = {"role": ROLE, "version": VERSION, "task": self.task, "task_version": self.task_version,
                 "backbone": self.label_backbone, "fraction": self.fraction, "seed": self.seed,
                 "samples": self.samples, "params": self.params}
        return "est-" + hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def label(self) -> str:
        return f"{self.task} · {self.label_backbone} · estimate · f={self.fraction:g} · ≤{self.samples} samples"


@dataclass
class EstimateSummary:
    results_dir: Path
    total: int
    skipped_done: int
    ran: int
    failed: int


def _shared(params: dict[str, Any], backbone: Backbone) -> dict[str, Any]:
    """The parameters that decide the data and the features (shared ones, the backbone's own defaults)."""
    own = set(backbone.defaults.get("*", {}))
    return {k: v for k, v in params.items() if k in SHARED or k in own}


def plan_estimates(suite: Suite, samples: int = 2000) -> list[EstimateCell]:
    """Every estimate of a suite: each task × backbone pair of the suite's cells, pretrained then random init.

    Parameters come from the pair's feature-extraction cell when the suite has one (so its cached features are
    reused), else from its first cell; only the shared ones count.
    """
    if samples < 10:
        raise UserError(f"--samples {samples}: too few for an estimate; give at least 10 (default 2000)")
    chosen: dict[tuple[str, str], Any] = {}
    for cell in expand(suite):
        pair = (cell.task, cell.backbone)
        better = cell.strategy == "feature-extraction" and chosen.get(pair, cell).strategy != cell.strategy
        if pair not in chosen or better:
            chosen[pair] = cell
    plan = []
    for (task, backbone), cell in chosen.items():
        params = _shared(cell.params, resolve_backbone(backbone))
        for random in (False, True):
            plan.append(EstimateCell(task, backbone, random, suite.fractions[0], samples, params, cell.versions[0]))
    return plan


def has_imagenet_head(backbone: Backbone) -> bool:
    """True for timm backbones with ImageNet weights (source-pretrained ones keep no source classifier)."""
    return type(backbone) is TimmBackbone


def _subsample(ctx: RunContext, samples: int) -> None:
    """Keep at most ``samples`` training indices (stratified, seeded) and no validation: only these get features."""
    train = ctx.splits.train
    if len(train) > samples:
        labels = ctx.data.train.y.numpy()[train]
        taken, _ = stratified_take(labels, samples, np.random.default_rng([SEED, 4]))
        train = train[taken]
    ctx.splits = dataclasses.replace(ctx.splits, train=train, val=np.empty(0, dtype=np.int64))


@torch.no_grad()
def _source_probs(backbone: Backbone, make_source: Callable[[], nn.Module], feats: torch.Tensor,
                  row: dict[str, Any]) -> np.ndarray | None:
    """Softmax of the source classifier on pooled features (timm: logits = classifier(pre-logits features)).

    None, with a note in the row, when the weights carry no 1000-way head (e.g. a user's weights file)."""
    try:
        model = make_source()
    except UserError as err:
        row["note"] = f"no NCE/LEEP: {err}"
        return None
    head = backbone.head(model).eval().to(feats.device).float()
    return torch.softmax(head(feats.float()), dim=1).double().cpu().numpy()


def estimate_row(cell: EstimateCell, suite_name: str, device: torch.device) -> tuple[dict[str, Any], str | None]:
    """Compute one estimate and return its results row (never raises for a failure inside) and a traceback."""
    t0 = time.perf_counter()
    task = registry.get("task", cell.task)
    meta = task.metadata
    row = new_row(cell, suite_name, meta.modality, meta.main_metric, provenance.snapshot(device))
    row.update(role=ROLE, backbone=cell.label_backbone, base_backbone=cell.backbone, random_init=cell.random,
               **{c: None for c in SCORE_COLUMNS}, source_head=None, note=None)
    tb = None
    install_pretrainer()  # a source-pretrained backbone's features need its weights (bench.run.pretrain)
    try:
        pretrained = resolve_backbone(cell.backbone)
        backbone = RandomInit(pretrained, SEED) if cell.random else pretrained
        with_head = has_imagenet_head(pretrained)

        def make_source() -> nn.Module:
            return backbone.create(IMAGENET_CLASSES if with_head else 1, not cell.random, cell.params)

        def make_features() -> nn.Module:
            # The anchor's one seeded model gives both its features and its (random) source head.
            return make_source() if cell.random else backbone.feature_model(cell.params)

        data = load_task_data(cell.task)
        row["data_source"] = data.source
        ctx = RunContext(task, data, backbone, dict(cell.params), cell.seed, cell.fraction, device)
        _subsample(ctx, cell.samples)
        t1 = time.perf_counter()
        train = ctx.features("train", make_features)
        row["feature_time_s"] = time.perf_counter() - t1
        feats, labels = train.inputs[0], train.y.cpu().numpy()
        x = feats.double().cpu().numpy()
        t2 = time.perf_counter()
        try:
            row["logme"] = ESTIMATORS["logme"].fn(x, labels)
            row["h_score"] = ESTIMATORS["h_score"].fn(x, labels)
            probs = _source_probs(backbone, make_source, feats, row) if with_head else None
            if probs is not None:
                row["nce"], row["leep"] = ESTIMATORS["nce"].fn(probs, labels), ESTIMATORS["leep"].fn(probs, labels)
                row["source_head"] = "random 1000-way head" if cell.random else "ImageNet-1k classifier"
        except ValueError as err:
            raise UserError(f"estimate on {cell.task} × {cell.label_backbone}: {err}") from None
        row.update(estimate_time_s=time.perf_counter() - t2, n_estimate_samples=len(labels),
                   n_features=int(x.shape[1]), n_train=len(labels), weights_source=backbone.weights_source())
    except (KeyboardInterrupt, SystemExit):
        raise
    except UserError as err:
        row.update(status="error", error=str(err))
    except Exception as err:  # noqa: BLE001 - one estimate failing must not stop the others
        row.update(status="error", error=first_line(err))
        tb = traceback.format_exc(limit=20)
    row["wall_time_s"] = time.perf_counter() - t0
    row["finished_at"] = now_iso()
    return row, tb


def run_estimates(suite: Suite, results_dir: Path, samples: int = 2000, device: str | None = None,
                  force: bool = False, only: list[str] | None = None) -> EstimateSummary:
    """Compute the suite's unrecorded estimates into ``results_dir`` (the same directory ``run`` writes).

    Args:
        suite: a parsed suite.
        results_dir: results directory; created when absent.
        samples: at most this many training samples per estimate (stratified subset).
        device: torch device (default: CUDA when available).
        force: recompute recorded estimates too.
        only: ``KEY=VALUE`` filters on ``task`` or ``backbone`` (the suite's name, without ``@random``).

    Returns:
        Counts of estimates planned, already recorded, run and failed.
    """
    torch_device = provenance.pick_device(device)
    plan = plan_estimates(suite, samples)
    for item in only or []:
        key, sep, value = item.partition("=")
        if not sep or key not in ("task", "backbone"):
            raise UserError(f"--only {item!r}: estimate filters are task=NAME or backbone=NAME")
        plan = [c for c in plan if getattr(c, key) == value]
    if not plan:
        raise UserError("no estimates match the --only filters; drop or correct them")
    results_dir.mkdir(parents=True, exist_ok=True)
    done = results.read_cell_rows(results_dir)
    todo = pending(plan, done, force, retry_errors=True)
    summary = EstimateSummary(results_dir, len(plan), len(plan) - len(todo), 0, 0)
    with RunProgress(len(todo)) as progress:
        if summary.skipped_done:
            progress.note(f"{summary.skipped_done} of {len(plan)} estimates already recorded in {results_dir}; "
                          "computing the rest (--force to recompute)")
        computed = ((cell, CellRecord(*estimate_row(cell, suite.name, torch_device))) for cell in todo)
        record_rows(computed, results_dir, done, summary, progress, _detail)
    results.consolidate_locked(results_dir)
    return summary


def _detail(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return str(row["error"])
    scores = ", ".join(f"{c} {row[c]:.3f}" for c in SCORE_COLUMNS if row.get(c) is not None)
    return f"{scores} on {row['n_estimate_samples']} samples in {row['wall_time_s']:.1f}s"
