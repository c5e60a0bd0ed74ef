"""Helpers shared by the text tasks: label mapping, whitespace clean-up, de-duplication, fixed test splits.

Text tasks return ``Split(x=list[str], y=LongTensor)``. Their preparation rules, in one place:
- whitespace is collapsed and texts are stripped; nothing else is changed (lower-casing and tokenisation belong
  to the backbone, which knows what its vocabulary expects);
- texts that are empty after stripping are dropped by the task (and counted in the task's description of the
  data), so no backbone ever sees a training example without content;
- exact duplicate texts are kept once (a duplicate on both sides of a train/test split inflates test scores);
- a label outside the declared classes is a ``UserError`` naming it, never a silent remapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from bench.core.errors import UserError
from bench.core.splits import stratified_take
from bench.core.task import Split

_SPACE = re.compile(r"\s+")


def clean(text: str) -> str:
    """Collapse runs of whitespace (newlines, tabs) into single spaces and strip the ends."""
    return _SPACE.sub(" ", str(text)).strip()


def label_ids(values: Iterable, classes: Sequence[str], task: str) -> torch.Tensor:
    """Map label values to class indices: class names (str) or integer ids; anything else is a UserError."""
    index = {name: i for i, name in enumerate(classes)}
    out = []
    for value in values:
        if isinstance(value, str) and value in index:
            out.append(index[value])
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) < len(classes):
            out.append(int(value))
        else:
            raise UserError(f"task {task}: label {value!r} is not one of its classes {list(classes)} "
                            f"(or an id 0..{len(classes) - 1})")
    return torch.tensor(out, dtype=torch.long)


def dedupe(texts: Sequence[str], labels: Sequence) -> tuple[list[str], list]:
    """Keep the first occurrence of each distinct (cleaned) text; drop empty texts."""
    seen: set[str] = set()
    keep_x, keep_y = [], []
    for text, label in zip(texts, labels):
        text = clean(text)
        if not text or text in seen:
            continue
        seen.add(text)
        keep_x.append(text)
        keep_y.append(label)
    return keep_x, keep_y


def fixed_split(texts: list[str], y: torch.Tensor, test_share: float) -> tuple[Split, Split]:
    """A stratified train/test split with seed 0, identical for every run (for corpora with no official one)."""
    test, train = stratified_take(y.numpy(), int(round(len(y) * test_share)), np.random.default_rng(0))
    return (Split([texts[i] for i in train], y[torch.from_numpy(train)]),
            Split([texts[i] for i in test], y[torch.from_numpy(test)]))
