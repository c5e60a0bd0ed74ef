"""Drawing bootstrap resamples fast (``bench.results.uncertainty``'s engine).

Examples with the same outcome pattern (their label and every cell's prediction) are exchangeable, so a resample
of the test examples is a count per distinct pattern (``patterns``, ``draw_counts``) instead of ``n_test``
indices; scores are then computed from the counts (accuracy as a product, ``macro_f1`` through one sparse
product). ``seed_weights`` / ``seed_mean`` draw seeds with replacement. numpy and scipy only.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse

__all__ = ["seed_weights", "seed_mean", "patterns", "draw_counts", "macro_f1"]


def seed_weights(seeds: int, rng: np.random.Generator, resamples: int) -> np.ndarray | None:
    """How often each seed is drawn in each resample (None for one seed: nothing to draw)."""
    return None if seeds == 1 else rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=resamples)


def patterns(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of a small non-negative int table, how often each occurs and each row's pattern index
    (``np.unique(axis=0)``, but through one int64 code per row when the rows fit in one: ~20× faster)."""
    table = np.asarray(table, dtype=np.int64)
    radix = int(table.max()) + 1 if table.size else 1
    if table.shape[1] * math.log2(max(radix, 2)) > 62:
        patterns, inverse, counts = np.unique(table, axis=0, return_inverse=True, return_counts=True)
        return patterns, counts, inverse.ravel()
    codes = table @ (radix ** np.arange(table.shape[1], dtype=np.int64))
    _, first, inverse, counts = np.unique(codes, return_index=True, return_inverse=True, return_counts=True)
    return table[first], counts, inverse


def draw_counts(counts: np.ndarray, inverse: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """How often each pattern occurs in each of ``resamples`` draws of n examples with replacement.

    Few patterns: one multinomial per resample (cost ∝ patterns). Many (macro-F1 on many classes): draw the
    example indices and count, in chunks that keep memory small (cost ∝ examples).
    """
    n, k = int(counts.sum()), len(counts)
    if k * 4 <= n:
        return rng.multinomial(n, counts / n, size=resamples).astype(np.float32)
    out = np.empty((resamples, k), dtype=np.float32)  # counts ≤ n: exact in float32, half the memory traffic
    inverse = inverse.astype(np.int32)  # int32 throughout: half the memory traffic of int64
    step = max(1, 4_000_000 // n)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        picked = inverse[rng.integers(0, n, size=(rows, n), dtype=np.uint16 if n <= 65536 else np.int32)]
        picked += (k * np.arange(rows, dtype=np.int32))[:, None]
        out[start:start + rows] = np.bincount(picked.ravel(), minlength=rows * k).reshape(rows, k)
    return out


def seed_mean(block: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean over seeds drawn with replacement, per resample (``block``: resample × seed)."""
    weights = seed_weights(block.shape[1], rng, block.shape[0])
    return block[:, 0] if weights is None else (weights * block).sum(axis=1) / block.shape[1]


def macro_f1(draws: np.ndarray, y: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Macro-F1 of every cell (column of ``preds``) per resample, from pattern counts, as sklearn computes it:
    the mean F1 over the classes present in truth or prediction.

    One sparse product gives every cell's true-positive, false-positive and false-negative count per class:
    each pattern adds to TP[y] when right, else to FN[y] and FP[pred].
    """
    patterns, cells = preds.shape
    k = int(max(y.max(), preds.max())) + 1
    hit = preds == y[:, None]  # pattern × cell
    rows, cols = [], []
    for j in range(cells):  # column blocks per cell: [TP | FP | FN], k classes each
        base = 3 * k * j
        rows += [np.flatnonzero(hit[:, j]), np.flatnonzero(~hit[:, j]), np.flatnonzero(~hit[:, j])]
        cols += [base + y[hit[:, j]], base + k + preds[~hit[:, j], j], base + 2 * k + y[~hit[:, j]]]
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    indicator = sparse.csr_matrix((np.ones(len(rows), dtype=draws.dtype), (rows, cols)),
                                  shape=(patterns, 3 * k * cells))
    counts = np.asarray(draws @ indicator).reshape(len(draws), cells, 3, k)  # resample × cell × kind × class
    tp, fp, fn = counts[:, :, 0], counts[:, :, 1], counts[:, :, 2]
    denom = 2 * tp + fp + fn
    present = denom > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * tp / np.where(present, denom, 1), 0.0)
    return f1.sum(axis=2) / np.maximum(present.sum(axis=2), 1)
