"""A test-only strategy whose cells misbehave on purpose: sleep, SIGKILL their own process, or run out of memory.

Loaded in every process (runner, pool workers, Ray workers) through
``TRANSFERBENCH_EXTRA_PLUGINS=tests.helpers.fault_plugins`` with the repository root on ``PYTHONPATH``, because a
monkeypatched registry does not reach other processes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import torch

from bench.core.context import Outcome
from bench.core.strategy import Strategy


class FaultProbe(Strategy):
    """Does no training; its ``fault`` parameter picks the misbehaviour.

    - ``none``: sleep ``sleep_s`` seconds, then report a fixed outcome.
    - ``hang``: sleep for an hour (a cell for the per-cell time limit to stop).
    - ``kill``: SIGKILL its own process in the middle of the cell, every attempt.
    - ``kill-once``: SIGKILL its own process on the first attempt only (a marker file under ``marker`` remembers
      the attempt across processes), then behave like ``none``.
    - ``oom``: raise ``torch.cuda.OutOfMemoryError`` while the batch size is above ``fits_batch``.
    - ``oom-never``: raise it at every batch size (the runner gives up at its floor).
    - ``features``: compute (or read) the shared on-disk feature cache of a randomly initialised backbone.
    """

    name = "fault-probe"
    description = "test-only: sleeps, kills its worker or raises CUDA out-of-memory on purpose"
    parameters = {"fault": ["none"], "sleep_s": [0.0], "marker": [""], "fits_batch": [8]}  # noqa: RUF012
    modalities = ("vision", "text")

    def run(self, ctx):
        fault, params = ctx.params["fault"], ctx.params
        if fault == "kill" or (fault == "kill-once" and _first_attempt(params["marker"], ctx.seed)):
            time.sleep(0.2)  # "in the middle of a cell": the cell has started and is working
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "oom-never" or (fault == "oom" and params["batch_size"] > params["fits_batch"]):
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (simulated at batch size {params['batch_size']})")
        if fault == "features":
            feats = ctx.features("train", lambda: ctx.backbone.create(ctx.meta.num_classes, False, ctx.params))
            assert len(feats) == len(ctx.splits.train) and bool(feats.inputs[0].isfinite().all())
        time.sleep(3600.0 if fault == "hang" else float(params["sleep_s"]))
        curve = [{"epoch": 1, "val_accuracy": 0.5, "train_loss": 1.0, "time_s": 0.0}]
        return Outcome(accuracy=0.5, macro_f1=0.5, val_accuracy=0.5, curve=curve, best_epoch=1)


def _first_attempt(marker_dir: str, seed: int) -> bool:
    """True once per (marker folder, seed): the file is created exclusively, so only one attempt sees True."""
    marker = Path(marker_dir) / f"attempt-{seed}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        marker.open("x").close()
    except FileExistsError:
        return False
    return True
