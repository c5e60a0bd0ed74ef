"""Seeded, stratified index splits over a task's official data.

Validation is cut from the official training split (seeded by the cell's seed); the label fraction is then a
stratified sample of what remains; test is the official test split, optionally a fixed stratified subset
(the same for every cell, so all strategies are scored on identical samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class SplitIndices:
    train: np.ndarray  # indices into the official training split
    val: np.ndarray  # indices into the official training split
    test: np.ndarray  # indices into the official test split


def stratified_take(labels: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``count`` indices with class proportions kept (at least one per class); return (taken, rest)."""
    classes, counts = np.unique(labels, return_counts=True)
    share = counts / counts.sum() * count
    want = np.maximum(np.floor(share).astype(int), 1)
    # Hand out what flooring lost to the classes with the largest remainders, so the total is exact.
    for idx in np.argsort(-(share - np.floor(share)))[: max(count - want.sum(), 0)]:
        want[idx] += 1
    want = np.minimum(want, counts)
    taken = []
    for cls, n in zip(classes, want):
        members = np.flatnonzero(labels == cls)
        taken.append(rng.choice(members, size=n, replace=False))
    taken = np.sort(np.concatenate(taken))
    rest = np.setdiff1d(np.arange(len(labels)), taken, assume_unique=True)
    return taken, rest


def make_splits(train_y: torch.Tensor, test_y: torch.Tensor, seed: int, fraction: float, val_size: float | int,
                test_limit: int | None) -> SplitIndices:
    train_labels = train_y.numpy()
    n = len(train_labels)
    n_val = int(val_size) if val_size >= 1 else int(round(n * val_size))
    n_val = min(max(n_val, 1), n // 2)
    rng = np.random.default_rng([seed, 1])
    val, rest = stratified_take(train_labels, n_val, rng)
    if fraction < 1.0:
        n_train = max(int(round(len(rest) * fraction)), 1)
        picked, _ = stratified_take(train_labels[rest], n_train, np.random.default_rng([seed, 2]))
        rest = rest[picked]
    test = np.arange(len(test_y))
    if test_limit and test_limit < len(test):
        test, _ = stratified_take(test_y.numpy(), int(test_limit), np.random.default_rng([0, 3]))
    return SplitIndices(train=rest, val=val, test=test)
