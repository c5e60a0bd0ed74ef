"""Readers shared by the image tasks: idx files (MNIST family), the CIFAR python format, torchvision downloads."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import torch

from bench.infra.cache import cache_dir
from bench.core.errors import UserError


def data_path_from_env(task_name: str) -> Path | None:
    """An explicit data location: ``TRANSFERBENCH_DATA_<TASK>`` (e.g. ``TRANSFERBENCH_DATA_FASHION_MNIST``)."""
    value = os.environ.get("TRANSFERBENCH_DATA_" + task_name.upper().replace("-", "_"))
    return Path(value).expanduser() if value else None


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally gzipped): the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        hits = sorted(folder.rglob(name))
        if hits:
            return hits[0]
    return None


def load_idx_folder(folder: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(train_x [N,1,28,28], train_y, test_x, test_y) from a folder holding the four idx files, else None."""
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    paths = [find_idx(folder, s) for s in stems]
    if not all(paths):
        return None
    arrays = [read_idx(p) for p in paths]
    tx, ty, vx, vy = (torch.from_numpy(a.copy()) for a in arrays)
    return tx.unsqueeze(1), ty.long(), vx.unsqueeze(1), vy.long()


def read_cifar_folder(folder: Path, label_key: str = "labels", train_files: tuple[str, ...] | None = None,
                      test_file: str = "test_batch"):
    """(train_x [N,3,32,32], train_y, test_x, test_y) from the CIFAR "python version" pickled batches, else None."""
    train_files = train_files or tuple(f"data_batch_{i}" for i in range(1, 6))
    hits = sorted(folder.rglob(test_file))
    if not hits:
        return None
    root = hits[0].parent
    if not all((root / f).is_file() for f in train_files):
        return None

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(root / name, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")  # the official format is a pickled dict
        return np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(batch[label_key])

    parts = [read(f) for f in train_files]
    test_x, test_y = read(test_file)
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    return (torch.from_numpy(train_x), torch.from_numpy(train_y).long(), torch.from_numpy(test_x),
            torch.from_numpy(test_y).long())


def torchvision_download(dataset_cls_name: str, task_name: str) -> Path:
    """Download through torchvision's real loader into ``<cache>/torchvision``; one clear line when offline."""
    import torchvision

    root = cache_dir() / "torchvision"
    try:
        cls = getattr(torchvision.datasets, dataset_cls_name)
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception as err:  # urllib/HTTP errors vary; the user needs one line either way
        raise UserError(f"task {task_name!r}: no local copy and the download failed ({type(err).__name__}); "
                        f"set TRANSFERBENCH_DATA_{task_name.upper().replace('-', '_')} to a folder with the data, "
                        "or go online") from None
    return root
