"""Contract tests: every registered strategy on a tiny generated vision task with a tiny timm model."""

from __future__ import annotations


import pytest

from bench.plan import registry
from bench.run.cell import run_cell
from bench.plan.suite import expand, parse_suite
from tests.helpers.tiny import TINY_MODEL, check_contract, check_predictions, tiny_shapes_backbone

PARAMS = {"image_size": 16, "epochs": 2, "batch_size": 32, "eval_batch_size": 64, "min_steps_per_epoch": 2,
          "val_size": 30}


@pytest.fixture()
def tiny(monkeypatch, tmp_path):
    return tiny_shapes_backbone(monkeypatch, tmp_path)


def cells_for(strategy: str, backbone: str, **params):
    suite = parse_suite({"tasks": ["tiny-shapes"], "backbones": [backbone], "strategies": [strategy],
                         "params": PARAMS | params, "fractions": [1.0], "seeds": [0],
                         # strategies that learn from a second task get the target itself as their source
                         "strategy_params": {strategy: {"source": "tiny-shapes"}}
                         if registry.get("strategy", strategy).needs else {}})
    return expand(suite)


@pytest.mark.parametrize("strategy", list(registry.plugins("strategy")))
def test_every_strategy_runs_on_vision(strategy, tiny):
    import torch

    (cell,) = cells_for(strategy, tiny)
    record = run_cell(cell, "t", torch.device("cpu"))
    row = record.row
    check_contract(row, strategy)
    check_predictions(record, strategy)
    assert row["modality"] == "vision"
    if strategy in ("from-scratch", "partial-freeze", "full-fine-tune"):
        assert row["total_params"] == 99_967  # test_efficientnet with a 3-class head, frozen layers included
    if strategy == "full-fine-tune":  # every convolution and the head train; pretrained BatchNorm stays frozen
        assert 0.9 * row["total_params"] < row["trainable_params"] < row["total_params"]


def test_from_scratch_learns_the_tiny_task(tiny):
    """Not only runs: the shared loop must actually fit an easy task well above chance (1/3)."""
    import torch

    (cell,) = cells_for("from-scratch", TINY_MODEL, epochs=4, min_steps_per_epoch=8, lr=0.01)
    row = run_cell(cell, "t", torch.device("cpu")).row
    assert row["status"] == "ok", row["error"]
    assert row["accuracy"] > 0.8


def test_feature_extraction_cache_is_reused(tiny, tmp_path, monkeypatch):
    import torch

    from bench.infra import cache
    from bench.run import features as features_module

    monkeypatch.setattr(cache, "_override", tmp_path / "fresh-cache")
    features_module._FEATURES.clear()
    (cell,) = cells_for("feature-extraction", tiny)
    first = run_cell(cell, "t", torch.device("cpu")).row
    files = sorted((cache.cache_dir() / "features").glob("tiny-shapes-*"))
    assert len(files) == 2  # one per official split (train, test)
    features_module._FEATURES.clear()  # force a read from disk
    stamps = [f.stat().st_mtime_ns for f in files]
    second = run_cell(cell, "t", torch.device("cpu")).row
    assert [f.stat().st_mtime_ns for f in files] == stamps  # nothing recomputed
    assert second["accuracy"] == pytest.approx(first["accuracy"])


def test_partial_freeze_freezes_the_first_stages(tiny):
    import timm

    from bench.backbones import resolve_backbone
    from bench.run.kit import freeze

    backbone = resolve_backbone(tiny)
    model = backbone.create(3, pretrained=True, params=PARAMS)
    stages = backbone.stages(model)
    assert stages[0] == ["conv_stem", "bn1"]
    freeze(model, [n for s in stages[:-1] for n in s])
    assert not any(p.requires_grad for p in model.conv_stem.parameters())
    assert all(p.requires_grad for p in backbone.head(model).parameters())
    assert isinstance(model.bn1, timm.layers.FrozenBatchNormAct2d)  # running stats cannot drift in train mode


def test_nan_loss_becomes_an_error_row(tiny):
    import torch

    (cell,) = cells_for("from-scratch", TINY_MODEL, lr=1e12)
    row = run_cell(cell, "t", torch.device("cpu")).row
    assert row["status"] == "error" and "FloatingPointError" in row["error"]
