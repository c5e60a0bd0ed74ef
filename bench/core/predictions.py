"""What a cell predicted per example, as a strategy hands it back (``Outcome.predictions``).

The types only: ``bench.results.predictions`` writes and reads them (one ``.npz`` per cell) for the paired tests,
bootstrap intervals, confusion matrices and calibration of the report. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SplitPredictions", "CellPredictions"]


@dataclass(frozen=True)
class SplitPredictions:
    ids: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    proba: np.ndarray

    def __post_init__(self):
        n = len(self.ids)
        if not (len(self.y) == len(self.pred) == len(self.proba) == n):
            raise ValueError(f"predictions of unequal length: ids {n}, y {len(self.y)}, pred {len(self.pred)}, "
                             f"proba {len(self.proba)}")

    @property
    def correct(self) -> np.ndarray:
        """Per-example correctness (bool)."""
        return self.pred == self.y

    @classmethod
    def from_proba(cls, ids, y, proba) -> "SplitPredictions":
        """Build from class probabilities; the prediction is their argmax."""
        proba = np.asarray(proba, dtype=np.float32)
        return cls(np.asarray(ids, dtype=np.int64), np.asarray(y, dtype=np.int64),
                   proba.argmax(axis=1).astype(np.int64), proba.astype(np.float16))


@dataclass(frozen=True)
class CellPredictions:
    test: SplitPredictions
    val: SplitPredictions | None = None
    classes: tuple[str, ...] = ()
