"""Vision zero-shot: Fashion-MNIST's hand ImageNet map names real classes; ``invert`` flips the images."""

from __future__ import annotations

import timm.data
import torch

from bench.backbones.vision import imagenet_mapping
from bench.run.cell import run_cell
from bench.run.taskdata import load_task_data
from bench.plan.suite import expand, parse_suite
from tasks.fashion_mnist import FashionMNIST
from tests.helpers.tiny import TINY_MODEL, TinyShapes, register, tiny_weights


def test_fashion_mnist_map_points_at_the_right_imagenet_classes():
    info = timm.data.ImageNetInfo()
    meta = FashionMNIST.metadata
    names = {cls: [info.index_to_description(i).lower() for i in idx] for cls, idx in meta.imagenet_map.items()}
    assert set(names) == set(meta.classes)
    assert "jersey" in names["T-shirt/top"][0] and "jean" in names["Trouser"][0]
    assert "sandal" in names["Sandal"][0] and "running shoe" in names["Sneaker"][0]
    assert "cowboy boot" in names["Ankle boot"][0] and "purse" in names["Bag"][0]
    mapping = imagenet_mapping(meta)
    assert mapping.shape == (1000, 10) and (mapping.sum(1) <= 1).all()  # no ImageNet class counted twice
    assert (mapping.sum(0) >= 1).all()  # every target class gets some probability mass


def test_invert_flips_the_images(monkeypatch, tmp_path):
    register(monkeypatch, "task", TinyShapes())
    load_task_data.cache_clear()
    backbone = f"{TINY_MODEL}@{tiny_weights(tmp_path / 'tiny.safetensors')}"
    suite = parse_suite({"tasks": ["tiny-shapes"], "backbones": [backbone], "strategies": ["zero-shot"],
                         "params": {"image_size": 16, "val_size": 30},
                         "strategy_params": {"zero-shot": {"invert": [False, True]}}})
    seen: list[float] = []
    from bench.backbones.vision import TimmBackbone

    original = TimmBackbone.transform

    def spy(self, batch, params):
        seen.append(float(batch[0].float().mean()))
        return original(self, batch, params)

    monkeypatch.setattr(TimmBackbone, "transform", spy)
    means = []
    for cell in expand(suite):
        seen.clear()
        row = run_cell(cell, "t", torch.device("cpu")).row
        assert row["status"] == "ok", row["error"]
        means.append(sum(seen) / len(seen))
    assert abs(means[0] + means[1] - 255) < 1e-3  # the same images, x and 255 - x
