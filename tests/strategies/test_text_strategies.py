"""Contract tests: every registered strategy × {tiny word vectors, tiny random BERT} on a tiny generated text task."""

from __future__ import annotations


import pytest
import torch

from bench.plan import registry
from bench.run.cell import run_cell
from bench.run.taskdata import load_task_data
from bench.plan.suite import expand, parse_suite
from tests.helpers.text_fixtures import TinySentiment, tiny_bert, vectors_table, write_word2vec_text
from tests.helpers.tiny import check_contract, check_predictions, register

PARAMS = {"epochs": 2, "batch_size": 32, "eval_batch_size": 64, "min_steps_per_epoch": 3, "val_size": 30,
          "max_length": 16}


@pytest.fixture(scope="module")
def text_backbones(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("text-backbones")
    return {"vectors": str(write_word2vec_text(root / "tiny.vec", vectors_table())),
            "bert": str(tiny_bert(root / "tiny-bert"))}


@pytest.fixture()
def tiny_task(monkeypatch):
    register(monkeypatch, "task", TinySentiment())
    load_task_data.cache_clear()


def cells_for(strategy: str, backbone: str, **params):
    suite = parse_suite({"tasks": ["tiny-sentiment"], "backbones": [backbone], "strategies": [strategy],
                         "params": PARAMS | params, "fractions": [1.0], "seeds": [0],
                         # strategies that learn from a second task get the target itself as their source
                         "strategy_params": {strategy: {"source": "tiny-sentiment"}}
                         if registry.get("strategy", strategy).needs else {}})
    return expand(suite)


@pytest.mark.parametrize("kind", ["vectors", "bert"])
@pytest.mark.parametrize("strategy", list(registry.plugins("strategy")))
def test_every_strategy_runs_on_text(strategy, kind, text_backbones, tiny_task):
    (cell,) = cells_for(strategy, text_backbones[kind])
    record = run_cell(cell, "t", torch.device("cpu"))
    row = record.row
    check_contract(row, strategy)
    check_predictions(record, strategy)
    assert row["modality"] == "text"
    if strategy == "full-fine-tune":  # no BatchNorm in text models: everything trains
        assert row["trainable_params"] == row["total_params"]


def test_word_vector_strategies_learn_and_zero_shot_uses_the_vectors(text_backbones, tiny_task):
    """Not only runs: sentiment words lie along ±axis 0 of the tiny vectors, so every pretrained strategy (and
    zero-shot, through the label words 'positive'/'negative') must beat chance clearly."""
    for strategy in ("feature-extraction", "partial-freeze", "full-fine-tune", "zero-shot"):
        (cell,) = cells_for(strategy, text_backbones["vectors"], epochs=3, min_steps_per_epoch=10, lr=0.03)
        row = run_cell(cell, "t", torch.device("cpu")).row
        assert row["status"] == "ok", row["error"]
        assert row["accuracy"] > 0.9, (strategy, row["accuracy"])


def test_transformer_from_scratch_learns(text_backbones, tiny_task):
    (cell,) = cells_for("from-scratch", text_backbones["bert"], epochs=6, min_steps_per_epoch=15, lr=3e-3)
    row = run_cell(cell, "t", torch.device("cpu")).row
    assert row["status"] == "ok", row["error"]
    assert row["accuracy"] > 0.8


def test_partial_freeze_on_text_freezes_what_the_issue_says(text_backbones, tiny_task):
    """Word vectors: the embeddings frozen, the layers above trained. BERT: embeddings + first layers frozen."""
    from bench.backbones import resolve_backbone
    from bench.run.kit import freeze

    vec = resolve_backbone(text_backbones["vectors"])
    (cell,) = cells_for("partial-freeze", text_backbones["vectors"])
    assert cell.params["trainable_stages"] == 0  # the backbone's default: its one stage is the embedding table
    model = vec.create(2, pretrained=True, params=cell.params)
    freeze(model, [n for s in vec.stages(model) for n in s])
    assert not model.embed.weight.requires_grad
    assert all(p.requires_grad for p in vec.head(model).parameters())

    bert = resolve_backbone(text_backbones["bert"])
    (cell,) = cells_for("partial-freeze", text_backbones["bert"])
    model = bert.create(2, pretrained=True, params=cell.params)
    stages = bert.stages(model)
    assert stages[0] == ["base.embeddings"] and stages[1] == ["base.encoder.layer.0"]
    assert "base.pooler" in stages[-1]
    freeze(model, [n for s in stages[:-1] for n in s])
    assert not any(p.requires_grad for p in model.base.embeddings.parameters())
    assert not any(p.requires_grad for p in model.base.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in model.base.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in bert.head(model).parameters())


def test_feature_extraction_reuses_cached_text_features(text_backbones, tiny_task):
    from bench.run import features as features_module
    from bench.infra.cache import cache_dir

    (cell,) = cells_for("feature-extraction", text_backbones["bert"], max_length=15)  # an encoding no other test uses
    before = set((cache_dir() / "features").glob("tiny-sentiment-*"))
    first = run_cell(cell, "t", torch.device("cpu")).row
    files = sorted(set((cache_dir() / "features").glob("tiny-sentiment-*")) - before)
    assert len(files) == 2
    features_module._FEATURES.clear()
    stamps = [f.stat().st_mtime_ns for f in files]
    second = run_cell(cell, "t", torch.device("cpu")).row
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert second["accuracy"] == pytest.approx(first["accuracy"])
    assert second["feature_time_s"] < first["feature_time_s"]
