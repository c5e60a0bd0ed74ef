"""CIFAR-10 (Krizhevsky 2009): 50k/10k 32×32 colour images, 10 classes. Needs a local copy or the network."""

from __future__ import annotations

from pathlib import Path

from bench.infra.cache import cache_dir
from bench.core.errors import UserError
from bench.core.task import Split, Task, TaskData, TaskMetadata
from tasks._images import data_path_from_env, read_cifar_folder, torchvision_download


class CIFAR10(Task):
    metadata = TaskMetadata(
        name="cifar10",
        description="CIFAR-10, 50k train / 10k test, 32x32 colour (online download or a local copy)",
        modality="vision",
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        source="https://www.cs.toronto.edu/~kriz/cifar.html (Krizhevsky 2009)",
        license="unspecified (research use)",
    )

    def load(self, path: Path | None = None) -> TaskData:
        path = path or data_path_from_env(self.name)
        if path is not None:
            arrays, source = read_cifar_folder(path), f"path:{path}"
            if arrays is None:
                raise UserError(f"{path}: no CIFAR-10 python batches (data_batch_1..5, test_batch)")
        elif (arrays := read_cifar_folder(cache_dir() / "torchvision")) is not None:
            source = "cache:torchvision CIFAR10"
        else:
            arrays = read_cifar_folder(torchvision_download("CIFAR10", self.name))
            source = "download:torchvision CIFAR10"
        tx, ty, vx, vy = arrays
        return TaskData(Split(tx, ty), Split(vx, vy), source)
