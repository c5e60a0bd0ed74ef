"""Shared cell parameters: the knobs every strategy understands, with defaults and one-line meanings.

Precedence when a cell's parameters are merged (later wins): these defaults, the strategy's own defaults, the
backbone's defaults for that strategy, the suite's ``params``, the suite's ``backbone_params`` for that backbone (shared
parameters and the strategy's own),
then the suite's ``strategy_params`` for that strategy (lists there expand as a grid).
"""

from __future__ import annotations

SHARED: dict[str, tuple[object, str]] = {
    "epochs": (5, "training epochs"),
    "batch_size": (128, "training batch size"),
    "eval_batch_size": (256, "batch size for validation, test and feature extraction"),
    "lr": (1e-3, "peak learning rate of the head (AdamW)"),
    "weight_decay": (0.01, "AdamW weight decay"),
    "warmup": (0.1, "share of training steps spent in linear warmup before the cosine decay"),
    "label_smoothing": (0.0, "cross-entropy label smoothing"),
    "image_size": (None, "input size in pixels for vision backbones (None: the backbone's default)"),
    "max_length": (64, "max tokens per text for transformer backbones"),
    "val_size": (0.1, "validation split cut from the training data: share (<1) or count (>=1)"),
    "test_limit": (None, "evaluate on a fixed stratified subset of this many test samples (None: all)"),
    "compile": (False, "torch.compile the model (CUDA only)"),
    "precision": ("auto", "auto (bf16 autocast on CUDA, fp32 on CPU), bf16 or fp32"),
    "min_steps_per_epoch": (10, "optimizer steps per epoch at least (tiny label fractions cycle their data)"),
    "precise_bn": (1024, "before each evaluation, recompute BatchNorm statistics on this many training samples "
                   "(0: off); with few steps the running averages lag far behind the weights"),
    "patience": (None, "stop after this many epochs without validation gain (None: run all epochs)"),
}


def shared_defaults() -> dict[str, object]:
    return {key: default for key, (default, _) in SHARED.items()}
