"""scikit-learn's 8×8 digits (UCI optical recognition of handwritten digits): 1797 images, 10 classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_digits

from bench.core.splits import stratified_take
from bench.core.task import Split, Task, TaskData, TaskMetadata

TEST_SHARE = 0.2  # no official test split: a fixed stratified 20 % is held out


class Digits(Task):
    metadata = TaskMetadata(
        name="digits",
        description="scikit-learn 8x8 handwritten digits, 1797 images (fixed 80/20 train/test)",
        modality="vision",
        classes=("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        source="UCI Optical Recognition of Handwritten Digits, via scikit-learn",
        license="CC BY 4.0",
    )

    def load(self, path: Path | None = None) -> TaskData:
        bunch = load_digits()
        # Pixel values are 0..16; stretch to the 0..255 range every image task uses.
        images = torch.from_numpy(np.round(bunch.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
        labels = torch.from_numpy(bunch.target.astype(np.int64))
        test, train = stratified_take(labels.numpy(), int(len(labels) * TEST_SHARE), np.random.default_rng(0))
        return TaskData(Split(images[train], labels[train]), Split(images[test], labels[test]),
                        f"package:scikit-learn {sklearn.__version__} (pypi)")
