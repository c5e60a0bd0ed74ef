"""Vision data loaders on generated files in the real formats (idx, CIFAR python batches)."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from bench.backbones import resolve_backbone
from bench.core.errors import UserError
from tasks.cifar10 import CIFAR10
from tasks.fashion_mnist import FashionMNIST


def write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_an_explicit_idx_folder(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (20, 28, 28))
    labels = np.arange(20) % 10
    for stem, arr in [("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                      ("t10k-images-idx3-ubyte", images[:10]), ("t10k-labels-idx1-ubyte", labels[:10])]:
        write_idx(tmp_path / f"{stem}.gz", arr)
    monkeypatch.setenv("TRANSFERBENCH_DATA_FASHION_MNIST", str(tmp_path))
    data = FashionMNIST().load()
    assert data.train.x.shape == (20, 1, 28, 28) and data.train.x.dtype == torch.uint8
    assert torch.equal(data.train.x[3, 0], torch.from_numpy(images[3].astype(np.uint8)))
    assert data.test.y.tolist() == labels[:10].tolist() and data.source == f"path:{tmp_path}"


def test_cifar10_reads_the_real_python_format(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 9],
                 "batch_label": name}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    monkeypatch.setenv("TRANSFERBENCH_DATA_CIFAR10", str(tmp_path))
    data = CIFAR10().load()
    assert data.train.x.shape == (20, 3, 32, 32) and data.test.x.shape == (4, 3, 32, 32)
    assert data.train.y.tolist()[:4] == [0, 1, 2, 9]
    with open(folder / "test_batch", "rb") as fh:
        raw = pickle.load(fh)["data"][1]
    assert torch.equal(data.test.x[1], torch.from_numpy(raw.reshape(3, 32, 32)))  # channel-major rows


def test_missing_cifar_files_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERBENCH_DATA_CIFAR10", str(tmp_path))
    with pytest.raises(UserError, match="no CIFAR-10 python batches"):
        CIFAR10().load()


def test_transform_matches_the_lecture_pipeline():
    backbone = resolve_backbone("test_efficientnet")
    gray = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    (x,) = backbone.transform((gray,), {"image_size": 16})
    assert x.shape == (2, 3, 16, 16)
    mean = torch.tensor(backbone.cfg.mean).view(1, 3, 1, 1)
    std = torch.tensor(backbone.cfg.std).view(1, 3, 1, 1)
    assert torch.allclose(x, ((1.0 - mean) / std).expand_as(x), atol=1e-4)  # per-channel mean/std


def test_weights_for_unknown_offline_model_is_one_clear_line():
    backbone = resolve_backbone("resnet18")
    with pytest.raises(UserError, match="no pretrained weights for 'resnet18' offline"):
        backbone.create(10, pretrained=True, params={})
