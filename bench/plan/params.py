"""Cell parameters, declared once: type, range or choices, default, one-line help.

Shared parameters (``SHARED``) are the knobs every strategy understands; a strategy declares its own in its file
(``parameters = {"backbone_lr_mult": Param(0.1, "...", float, low=0)}``; a plain list there is a benchopt-style
grid whose first value is the default and whose type is taken from it). ``transferbench list strategies`` prints
these declarations, and the suite schema checks every value against them before any cell runs.

Precedence when a cell's parameters are merged (later wins): these defaults, the strategy's own defaults, the
backbone's defaults for that strategy, the suite's ``params``, the suite's ``backbone_params`` for that backbone
(shared parameters and the strategy's own), then the suite's ``strategy_params`` for that strategy (lists there
expand as a grid).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.core.param import AnyValue, Param

__all__ = ["Param", "SHARED", "shared_defaults", "strategy_params"]


INT_LIMIT = 2**31 - 1  # sizes and counts beyond this are typos, and torch's int32 paths would overflow

SHARED: dict[str, Param] = {
    "epochs": Param(5, "training epochs", int, 1, 10_000),
    "batch_size": Param(128, "training batch size", int, 1, 1 << 20),
    "eval_batch_size": Param(256, "batch size for validation, test and feature extraction", int, 1, 1 << 20),
    "lr": Param(1e-3, "peak learning rate of the head (AdamW; 0 trains nothing)", float, 0),
    "weight_decay": Param(0.01, "AdamW weight decay", float, 0, 10),
    "warmup": Param(0.1, "share of training steps spent in linear warmup before the cosine decay", float, 0, 0.99),
    "label_smoothing": Param(0.0, "cross-entropy label smoothing", float, 0, 0.99),
    "image_size": Param(None, "input size in pixels for vision backbones (null: the backbone's default)", int, 8,
                        4096, nullable=True),
    "max_length": Param(64, "max tokens per text for transformer backbones", int, 1, 1 << 16),
    "val_size": Param(0.1, "validation split cut from the training data: share (<1) or count (>=1)", float, 0,
                      INT_LIMIT, open_low=True),
    "test_limit": Param(None, "evaluate on a fixed stratified subset of this many test samples (null: all)", int, 1,
                        INT_LIMIT, nullable=True),
    "compile": Param(False, "torch.compile the model (CUDA only)", bool),
    "precision": Param("auto", "auto (bf16 autocast on CUDA, fp32 on CPU), bf16 or fp32", str,
                       choices=("auto", "bf16", "fp32")),
    "min_steps_per_epoch": Param(10, "optimizer steps per epoch at least (tiny label fractions cycle their data)",
                                 int, 1, 1_000_000),
    "precise_bn": Param(1024, "before each evaluation, recompute BatchNorm statistics on this many training samples "
                        "(0: off); with few steps the running averages lag far behind the weights", int, 0, INT_LIMIT),
    "patience": Param(None, "stop after this many epochs without validation gain (null: run all epochs)", int, 1,
                      10_000, nullable=True),
}


def shared_defaults() -> dict[str, object]:
    return {key: spec.default for key, spec in SHARED.items()}


def strategy_params(strategy: Any) -> dict[str, Param]:
    """A strategy's own parameters as ``Param`` declarations (a plain list is a grid typed by its first value)."""
    out = {}
    for key, declared in getattr(strategy, "parameters", {}).items():
        if isinstance(declared, Param):
            out[key] = declared
            continue
        values = list(declared) if isinstance(declared, (list, tuple)) else [declared]
        first = values[0]
        if key in SHARED:  # a strategy's own default for a shared parameter keeps the shared declaration
            out[key] = dataclasses.replace(SHARED[key], default=first, grid=tuple(values) if len(values) > 1 else ())
            continue
        kind = type(first) if isinstance(first, (bool, int, float, str)) else object
        if kind is int and any(isinstance(v, float) for v in values):
            kind = float
        out[key] = _inferred(first, kind, tuple(values) if len(values) > 1 else ())
    return out


def _inferred(default: Any, kind: type, grid: tuple[Any, ...]) -> Param:
    if kind is object:  # e.g. None or a list default: anything the strategy itself accepts
        return AnyValue(default, "", grid=grid)
    if kind is str:
        return Param(default, "", str, grid=grid)
    return Param(default, "", kind, nullable=False, grid=grid)
