"""Synthetic results rows in the real schema, for the report's tests, its speed benchmark and demos.

The numbers follow a simple made-up model (saturating learning curves, transfer strategies start higher, fewer
labels lower the asymptote) so the figures look like a real sweep; nothing here is a measured result. Rows are
shaped like those ``bench.results.write_row`` records (JSON columns as text), so ``bench.results.to_frame``
turns them into exactly the frame ``load_results`` returns.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

from bench.results.roles import FINAL

# strategy: (accuracy after epoch 1, asymptote at full labels, learning rate of the curve, seconds per epoch,
#            trainable parameters)
PROFILES = {
    "from-scratch": (0.30, 0.80, 0.35, 6.0, 4_000_000),
    "feature-extraction": (0.70, 0.84, 0.90, 0.8, 12_810),
    "partial-freeze": (0.62, 0.90, 0.60, 3.5, 1_900_000),
    "full-fine-tune": (0.55, 0.93, 0.50, 7.0, 4_000_000),
    "zero-shot": (math.nan, 0.45, math.nan, 0.0, 0),
}


def cell_key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def curve(start: float, top: float, rate: float, epochs: int, seconds: float, noise: np.ndarray) -> list[dict]:
    """Per-epoch dicts as the training loop records them (val accuracy saturating from ``start`` to ``top``)."""
    out = []
    for e in range(1, epochs + 1):
        acc = top - (top - start) * math.exp(-rate * (e - 1)) + float(noise[e - 1])
        out.append({"epoch": e, "train_loss": round(2.0 * (1 - acc), 4), "train_accuracy": min(1.0, acc + 0.03),
                    "val_accuracy": round(min(max(acc, 0.0), 1.0), 4), "val_macro_f1": round(acc - 0.02, 4),
                    "time_s": round(seconds * e, 3), "epoch_time_s": round(seconds, 3)})
    return out


def row(task: str, backbone: str, strategy: str, seed: int, fraction: float, *, epochs: int = 8,
        status: str = "ok", error: str | None = None, rng: np.random.Generator | None = None,
        suite: str = "synthetic") -> dict[str, Any]:
    """One results row for a cell; ``status='error'`` gives a failed cell with ``error`` as its message."""
    rng = rng or np.random.default_rng(seed)
    start, top, rate, seconds, trainable = PROFILES.get(strategy, PROFILES["partial-freeze"])
    scale = 0.55 + 0.45 * fraction**0.35  # fewer labels: lower start and asymptote
    start, top = start * scale, top * scale
    seconds = seconds * max(fraction, 0.05)
    base = {
        "cell": cell_key(task, backbone, strategy, seed, fraction), "suite": suite, "task": task,
        "backbone": backbone, "strategy": strategy, "seed": seed, "fraction": fraction,
        "params": json.dumps({"lr": 0.001}), "status": status, "error": error, "modality": "vision",
        "main_metric": "accuracy", "device": "cpu", "git_sha": "0123abc",
        "versions": json.dumps({"torch": "2.14.1", "timm": "1.0.0"}), "started_at": "2025-01-01T00:00:00",
        "finished_at": "2025-01-01T00:10:00", "curve": "[]", "total_params": 4_000_000, "n_train": 1000,
        "n_val": 200, "n_test": 500, "data_source": "synthetic", "weights_source": "synthetic",
    }
    if status != "ok":
        return base
    if strategy == "zero-shot":
        acc = float(np.clip(top + rng.normal(0, 0.01), 0, 1))
        return {**base, "accuracy": acc, "macro_f1": acc - 0.03, "val_accuracy": acc, "epochs_run": 0,
                "best_epoch": None, "wall_time_s": 2.0, "train_time_s": 0.0, "trainable_params": 0}
    epochs_run = int(rng.integers(max(2, epochs - 2), epochs + 1))  # early stopping shortens some runs
    points = curve(start, top, rate, epochs_run, seconds, rng.normal(0, 0.01, epochs_run))
    vals = [p["val_accuracy"] for p in points]
    best = int(np.argmax(vals)) + 1
    acc = float(np.clip(vals[best - 1] + rng.normal(0, 0.01), 0, 1))
    return {**base, "curve": json.dumps(points), "accuracy": acc, "macro_f1": acc - 0.02,
            "val_accuracy": vals[best - 1], "best_epoch": best, "epochs_run": epochs_run,
            "wall_time_s": points[-1]["time_s"] + 1.5, "train_time_s": points[-1]["time_s"],
            "first_epoch_time_s": points[0]["time_s"], "trainable_params": trainable}


def sweep(tasks: int = 4, backbones: int = 2, fractions: tuple[float, ...] = (0.01, 0.05, 0.1, 0.5, 1.0),
          seeds: int = 5, strategies: tuple[str, ...] = tuple(PROFILES), error_every: int = 0,
          epochs: int = 8) -> list[dict[str, Any]]:
    """A full grid of rows: ``tasks × backbones × strategies × fractions × seeds`` (defaults: 1000 rows).

    ``error_every=k`` turns every k-th cell into a failed one (out-of-memory message), to exercise failures.
    """
    rng = np.random.default_rng(0)
    rows = []
    for t in range(tasks):
        for b in range(backbones):
            for strategy in strategies:
                for fraction in fractions:
                    for seed in range(seeds):
                        failed = error_every and (len(rows) + 1) % error_every == 0
                        rows.append(row(f"task-{t}", f"backbone-{b}", strategy, seed, fraction, epochs=epochs,
                                        rng=rng, status="error" if failed else "ok",
                                        error="CUDA out of memory (synthetic)" if failed else None))
    return rows


# --- per-example predictions (bench.results.predictions) ---------------------------------------------------------

DETERMINISTIC = ("feature-extraction", "zero-shot")  # the solved probe and zero-shot: the same on every seed


def _cell_predictions(correct: np.ndarray, y: np.ndarray, classes: int, rng: np.random.Generator):
    """Predictions with the given per-example correctness: the true class, else a random wrong one."""
    from bench.results.predictions import CellPredictions, SplitPredictions

    wrong = (y + rng.integers(1, classes, size=len(y))) % classes
    pred = np.where(correct, y, wrong)
    proba = np.full((len(y), classes), 0.4 / (classes - 1))
    proba[np.arange(len(y)), pred] = 0.6
    test = SplitPredictions(np.arange(len(y), dtype=np.int64), y, pred, proba.astype(np.float16))
    return CellPredictions(test=test, classes=tuple(f"class-{c}" for c in range(classes)))


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """sklearn's ``f1_score(average="macro")`` (over the classes in truth or prediction), ~50× cheaper."""
    k = int(max(y.max(), pred.max())) + 1
    tp = np.bincount(y[y == pred], minlength=k)
    denom = np.bincount(y, minlength=k) + np.bincount(pred, minlength=k)
    present = denom > 0
    return float(np.mean(2 * tp[present] / denom[present]))


def predicted_sweep(accuracy: dict[str, float], *, groups: int = 20, seeds: dict[str, int] | int = 3,
                    fractions: tuple[float, ...] = (1.0,), n_test: int = 500, classes: int = 10,
                    deterministic: tuple[str, ...] = DETERMINISTIC, seed_flip: float = 0.05,
                    rng_seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Final rows whose scores come from per-example predictions, and those predictions (cell key → predictions).

    Every group (task ``task-i``, one backbone) scores each strategy on the same ``n_test`` test examples. A
    strategy's true accuracy is ``accuracy[strategy]`` (a float, or a function of the label fraction); its
    correctness on each example is drawn once per group, and each seed re-draws a ``seed_flip`` share of the
    examples from the same rate (seed noise), except for ``deterministic`` strategies, identical on every seed.
    Rows carry the accuracy and macro-F1 of their predictions and ``n_test``, so the report finds the same numbers
    in both. ``seeds`` may differ per strategy.
    """
    rng = np.random.default_rng(rng_seed)
    rows, preds = [], {}
    for g in range(groups):
        y = rng.integers(0, classes, size=n_test)
        for fraction in fractions:
            for strategy, acc in accuracy.items():
                rate = acc(fraction) if callable(acc) else acc
                base = rng.random(n_test) < rate
                count = seeds.get(strategy, 3) if isinstance(seeds, dict) else seeds
                for seed in range(count):
                    correct = base.copy()
                    if strategy not in deterministic:
                        redo = rng.random(n_test) < seed_flip
                        correct[redo] = rng.random(int(redo.sum())) < rate
                    cell = _cell_predictions(correct, y, classes, rng)
                    r = row(f"task-{g}", "backbone-0", strategy, seed, fraction, rng=rng)
                    r.update(role=FINAL, n_test=n_test, accuracy=float(correct.mean()),
                             macro_f1=macro_f1(y, cell.test.pred))
                    rows.append(r)
                    preds[r["cell"]] = cell
    return rows, preds
