"""Fashion-MNIST (Xiao et al. 2017): 60k/10k 28×28 grey images of clothing, 10 classes."""

from __future__ import annotations

from pathlib import Path

from bench.infra import assets
from bench.infra.cache import cache_dir
from bench.core.errors import UserError
from bench.core.task import Split, Task, TaskData, TaskMetadata
from tasks._images import data_path_from_env, load_idx_folder, torchvision_download


class FashionMNIST(Task):
    metadata = TaskMetadata(
        name="fashion-mnist",
        description="Zalando Fashion-MNIST, 60k train / 10k test, 28x28 grey clothing images",
        modality="vision",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
        source="https://github.com/zalandoresearch/fashion-mnist (Xiao, Rasul, Vollgraf 2017)",
        license="MIT",
    )
    assets = ("fashion-mnist",)

    def load(self, path: Path | None = None) -> TaskData:
        path = path or data_path_from_env(self.name)
        if path is not None:
            arrays, source = load_idx_folder(path), f"path:{path}"
            if arrays is None:
                raise UserError(f"{path}: no Fashion-MNIST idx files (train-images-idx3-ubyte[.gz], ...)")
        elif (arrays := load_idx_folder(cache_dir() / "torchvision" / "FashionMNIST")) is not None:
            source = "cache:torchvision FashionMNIST"
        else:
            try:
                folder = assets.fetch("fashion-mnist")  # the local cache if fetched, else the Debian package
                arrays = load_idx_folder(folder)
                source = assets.source_line("fashion-mnist")
            except UserError:
                arrays = load_idx_folder(torchvision_download("FashionMNIST", self.name) / "FashionMNIST")
                source = "download:torchvision FashionMNIST"
        tx, ty, vx, vy = arrays
        return TaskData(Split(tx, ty), Split(vx, vy), source)

