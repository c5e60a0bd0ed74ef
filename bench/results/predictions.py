"""What each cell predicted, per example: the evidence behind paired tests, bootstrap intervals, confusion
matrices and calibration.

One compressed ``.npz`` per cell, ``RESULTS_DIR/predictions/<cell key>.npz``, written atomically *before* the
cell's row (so a recorded row always has its predictions, and a crash between the two leaves an orphan file that
the rerun overwrites). The arrays, for ``split`` in ``test`` and ``val``:

- ``<split>_ids``   int64 (n,): the example's index in the task's official split (``test`` → official test,
  ``val`` → official train), so every cell of one task shares one index and cells can be paired on it;
- ``<split>_y``     int64 (n,): the true class;
- ``<split>_pred``  int64 (n,): the predicted class;
- ``<split>_proba`` float16 (n, k): class probabilities (float16 is plenty for calibration and keeps files small);
- ``classes``       str (k,): class names.

numpy only (no torch): the report and the regression gate read these without the training code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.core.predictions import CellPredictions, SplitPredictions
from bench.infra.atomic import atomic_path

__all__ = ["SplitPredictions", "CellPredictions", "predictions_path", "write_predictions", "read_predictions",
           "read_many"]

SPLITS = ("test", "val")


def predictions_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / "predictions"


def predictions_path(results_dir: str | Path, key: str) -> Path:
    return predictions_dir(results_dir) / f"{key}.npz"


def write_predictions(results_dir: str | Path, key: str, preds: CellPredictions) -> Path:
    """Write one cell's predictions atomically; returns the path."""
    arrays: dict[str, np.ndarray] = {"classes": np.asarray([str(c) for c in preds.classes], dtype=str)}
    for split in SPLITS:
        part = getattr(preds, split)
        if part is None:
            continue
        arrays.update({f"{split}_ids": np.asarray(part.ids, dtype=np.int64),
                       f"{split}_y": np.asarray(part.y, dtype=np.int64),
                       f"{split}_pred": np.asarray(part.pred, dtype=np.int64),
                       f"{split}_proba": np.asarray(part.proba, dtype=np.float16)})
    path = predictions_path(results_dir, key)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:  # a file handle: np.savez would append ".npz" to a bare temporary name
            np.savez_compressed(handle, **arrays)
    return path


def read_predictions(results_dir: str | Path, key: str) -> CellPredictions | None:
    """One cell's predictions, or None when the file is missing or damaged (rows recorded before predictions
    were kept, or a file cut short by a crash): callers fall back to what the row alone allows."""
    path = predictions_path(results_dir, key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            parts = {split: SplitPredictions(data[f"{split}_ids"], data[f"{split}_y"], data[f"{split}_pred"],
                                             data[f"{split}_proba"])
                     for split in SPLITS if f"{split}_ids" in data.files}
            classes = tuple(str(c) for c in data["classes"]) if "classes" in data.files else ()
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if "test" not in parts:
        return None
    return CellPredictions(test=parts["test"], val=parts.get("val"), classes=classes)


def read_many(results_dir: str | Path, keys) -> dict[str, CellPredictions]:
    """``{key: predictions}`` for the keys that have readable predictions."""
    out = {}
    for key in keys:
        preds = read_predictions(results_dir, key)
        if preds is not None:
            out[key] = preds
    return out
