"""Tiny generated data and test-only plugins for fast tests of the real code paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import timm
import torch
from safetensors.torch import save_file

from bench.plan import registry
from bench.backbones import resolve_backbone
from bench.core.task import Split, Task, TaskData, TaskMetadata

TINY_MODEL = "test_efficientnet"  # timm's own tiny test architecture (~0.1 M parameters)


def shapes_images(n: int, seed: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey images of three learnable classes: a bright block top-left, bottom-right, or a horizontal bar."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.integers(0, 60, size=(n, 1, size, size)).astype(np.uint8)
    h = size // 2
    x[y == 0, :, :h, :h] += 180
    x[y == 1, :, h:, h:] += 180
    x[y == 2, :, h - 2:h + 2, :] += 180
    return torch.from_numpy(x), torch.from_numpy(y).long()


class TinyShapes(Task):
    metadata = TaskMetadata(
        name="tiny-shapes", description="generated 16x16 shapes, 3 classes (tests only)", modality="vision",
        classes=("square top left", "square bottom right", "bar"), source="generated", license="CC0",
        imagenet_map={"square top left": (0, 1), "square bottom right": (2, 3), "bar": (4, 5)},
    )

    def load(self, path: Path | None = None) -> TaskData:
        tx, ty = shapes_images(300, seed=1)
        vx, vy = shapes_images(90, seed=2)
        return TaskData(Split(tx, ty), Split(vx, vy), "generated")


def tiny_weights(path: Path, num_classes: int = 1000) -> Path:
    """Random-init weights of the tiny model saved as safetensors: exercises the real 'path' loading branch."""
    torch.manual_seed(0)
    model = timm.create_model(TINY_MODEL, pretrained=False, num_classes=num_classes)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def register(monkeypatch, kind: str, *plugins) -> None:
    """Add test-only plugins to the registry for one test."""
    table = dict(registry.plugins(kind))
    for plugin in plugins:
        table[plugin.name] = plugin
    original = registry.plugins
    monkeypatch.setattr(registry, "plugins", lambda k: table if k == kind else original(k))
    resolve_backbone.cache_clear()


def tiny_shapes_backbone(monkeypatch, tmp_path: Path) -> str:
    """Register ``tiny-shapes`` (fresh task-data cache) and return the tiny timm model with (random) pretrained
    weights from a file, so the pretrained code path runs offline."""
    from bench.run.taskdata import load_task_data

    register(monkeypatch, "task", TinyShapes())
    load_task_data.cache_clear()
    return f"{TINY_MODEL}@{tiny_weights(tmp_path / 'tiny.safetensors')}"


def check_contract(row: dict, strategy: str) -> None:
    """What every strategy's row must satisfy on a tiny task of 300 train / 90 test samples, 2 epochs."""
    import json

    assert row["status"] == "ok", row.get("traceback") or row["error"]
    assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["val_accuracy"] <= 1.0
    assert row["n_test"] == 90 and row["n_val"] == 30 and row["n_train"] == 270
    assert row["total_params"] > 0 and row["trainable_params"] <= row["total_params"]
    json.dumps(row, default=str)
    if strategy == "zero-shot":
        assert [p["epoch"] for p in row["curve"]] == [0] and row["trainable_params"] == 0  # its own epoch 0
        assert row["curve"][0]["val_accuracy"] == row["val_accuracy"]
    elif strategy == "feature-extraction":  # a solved probe: one curve point per L2 strength tried, not per epoch
        from bench.run.probe import DEFAULT_L2_GRID

        assert [p["epoch"] for p in row["curve"]] == list(range(1, len(DEFAULT_L2_GRID) + 1))
        # The folded head scores validation as the solver did (one near-tied sample may flip in rounding).
        assert abs(row["curve"][row["best_epoch"] - 1]["val_accuracy"] - row["val_accuracy"]) <= 1 / row["n_val"]
        assert row["curve"][-1]["time_s"] >= row["curve"][0]["time_s"] > 0 and row["train_time_s"] > 0
    else:
        assert [p["epoch"] for p in row["curve"]] == [0, 1, 2]  # epoch 0: the score before training
        assert row["epochs_run"] == 2 and row["best_epoch"] in (1, 2)
        assert row["curve"][2]["time_s"] >= row["curve"][1]["time_s"] >= row["curve"][0]["time_s"] > 0
        assert row["throughput"] > 0
    if strategy in ("feature-extraction", "partial-freeze"):
        assert row["trainable_params"] < row["total_params"]
    if strategy == "from-scratch":
        assert row["trainable_params"] == row["total_params"]


def check_predictions(record, strategy: str) -> None:
    """What every strategy's stored predictions must satisfy: they are the scores' own evidence.

    ``record`` is the cell's ``CellRecord``: the row carries no arrays, the predictions travel beside it.
    """
    from sklearn.metrics import f1_score

    row, preds = record.row, record.predictions
    assert "predictions" not in row and preds is not None, strategy
    test = preds.test
    assert len(test.ids) == row["n_test"] and len(set(test.ids.tolist())) == row["n_test"]
    assert abs(test.correct.mean() - row["accuracy"]) < 1e-9  # the prediction the accuracy was computed from
    assert abs(f1_score(test.y, test.pred, average="macro", zero_division=0) - row["macro_f1"]) < 1e-9
    assert test.proba.dtype == np.float16 and test.proba.shape == (row["n_test"], len(preds.classes))
    assert np.allclose(test.proba.astype(np.float32).sum(axis=1), 1.0, atol=1e-2)
    if strategy == "source-only":  # selected on the source's validation split: no validation part of its own
        assert preds.val is None
    else:
        assert len(preds.val.ids) == row["n_val"]
        assert abs(preds.val.correct.mean() - row["val_accuracy"]) < 1e-9
        val_f1 = f1_score(preds.val.y, preds.val.pred, average="macro", zero_division=0)
        assert abs(val_f1 - row["val_macro_f1"]) < 1e-9  # every strategy reports the selected epoch's macro-F1
        assert np.allclose(preds.val.proba.astype(np.float32).sum(axis=1), 1.0, atol=1e-2)
