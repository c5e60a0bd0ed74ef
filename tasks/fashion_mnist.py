"""Fashion-MNIST (Xiao et al. 2017): 60k/10k 28×28 grey images of clothing, 10 classes."""

from __future__ import annotations

from pathlib import Path

from bench.infra import assets
from bench.infra.cache import cache_dir
from bench.core.errors import UserError
from bench.core.task import Split, Task, TaskData, TaskMetadata
from tasks._images import data_path_from_env, load_idx_folder, torchvision_download

# Hand map for vision zero-shot: ImageNet-1k class indices (timm.data.ImageNetInfo) per Fashion-MNIST class.
# ImageNet has no plain shirt, trouser or dress class: the nearest garments stand in for them.
IMAGENET_MAP: dict[str, tuple[int, ...]] = {
    "T-shirt/top": (610, 639),  # jersey/T-shirt, maillot/tank suit
    "Trouser": (608,),  # jean
    "Pullover": (841, 474),  # sweatshirt, cardigan
    "Dress": (578, 601, 689, 655),  # gown, hoopskirt, overskirt, miniskirt
    "Coat": (869, 568, 617),  # trench coat, fur coat, lab coat
    "Sandal": (774,),  # sandal
    "Shirt": (834, 906, 697),  # suit, Windsor tie, pajama (collared shirts are worn under the first two)
    "Sneaker": (770, 630),  # running shoe, loafer
    "Bag": (748, 414, 636, 728),  # purse, backpack, mailbag, plastic bag
    "Ankle boot": (514,),  # cowboy boot
}


class FashionMNIST(Task):
    metadata = TaskMetadata(
        name="fashion-mnist",
        description="Zalando Fashion-MNIST, 60k train / 10k test, 28x28 grey clothing images",
        modality="vision",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
        source="https://github.com/zalandoresearch/fashion-mnist (Xiao, Rasul, Vollgraf 2017)",
        license="MIT",
        imagenet_map=IMAGENET_MAP,
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

