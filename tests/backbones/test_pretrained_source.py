"""Source-pretrained backbones: trained once through the shared loop, cached by everything that changes the
weights, recorded as a 'pretrain' row, used by every strategy like ImageNet weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.core.errors import UserError
from bench.core.task import Split, Task, TaskData, TaskMetadata
from bench.run.cell import run_cell
from bench.run.taskdata import load_task_data
from bench.plan.suite import expand, parse_suite
from tests.helpers.tiny import TINY_MODEL, TinyShapes, register, shapes_images

PARAMS = {"epochs": 2, "batch_size": 32, "eval_batch_size": 64, "min_steps_per_epoch": 2, "val_size": 30}


class TinyBars(Task):
    """A 2-class target (bar or not) on the same kind of images as the 3-class source."""

    metadata = TaskMetadata(name="tiny-bars", description="bar or block (tests only)", modality="vision",
                            classes=("block", "bar"), source="generated", license="CC0")

    def load(self, path: Path | None = None) -> TaskData:
        tx, ty = shapes_images(300, seed=3)
        vx, vy = shapes_images(90, seed=4)
        return TaskData(Split(tx, (ty == 2).long()), Split(vx, (vy == 2).long()), "generated")


def entry(name: str = "tiny-src", **pretrain) -> dict:
    return {"name": name, "arch": TINY_MODEL,
            "pretrain": {"task": "tiny-shapes", "epochs": 1, "image_size": 16, "batch_size": 32,
                         "min_steps_per_epoch": 2, "val_size": 30} | pretrain}


@pytest.fixture()
def tiny(monkeypatch, tmp_path):
    from bench.backbones import pretrained_source
    from bench.infra import cache
    from bench.run import features as features_module

    register(monkeypatch, "task", TinyShapes(), TinyBars())
    load_task_data.cache_clear()
    monkeypatch.setattr(cache, "_override", tmp_path / "cache")
    monkeypatch.setattr(pretrained_source, "_SPECS", {})
    monkeypatch.delenv(pretrained_source.ENV, raising=False)
    features_module._FEATURES.clear()
    return tmp_path


def suite_for(backbone, strategies, **params):
    return parse_suite({"tasks": ["tiny-bars"], "backbones": [backbone], "strategies": strategies,
                        "params": PARAMS | params})


def weight_files(root: Path) -> list[Path]:
    return sorted((root / "cache" / "weights" / "source").glob("*.safetensors"))


def test_every_strategy_uses_the_source_weights_and_they_are_trained_once(tiny):
    suite = suite_for(entry(), ["from-scratch", "feature-extraction", "full-fine-tune", "lp-ft", "l2-sp",
                                "zero-shot"])
    rows = {c.strategy: run_cell(c, "t", torch.device("cpu")).row for c in expand(suite)}
    (weights,) = weight_files(tiny)
    stamp = weights.stat().st_mtime_ns
    for strategy, row in rows.items():
        if strategy == "zero-shot":
            assert row["status"] == "skipped"  # no ImageNet classifier to map from
            continue
        assert row["status"] == "ok", (strategy, row["error"])
        assert row["depth"] == 18 and row["params"]["image_size"] == 16  # the source's size by default
    assert rows["from-scratch"]["weights_source"] == "random init"
    assert rows["full-fine-tune"]["weights_source"].startswith("pretrained:tiny-shapes:")
    record = json.loads(weights.with_suffix(".json").read_text())
    assert record["role"] == "pretrain" and [p["epoch"] for p in record["curve"]] == [0, 1]
    assert 0 <= record["accuracy"] <= 1 and record["n_test"] == 90

    from bench.backbones import resolve_backbone
    from bench.backbones.pretrained_source import classifier_keys
    from safetensors.torch import load_file

    model = resolve_backbone("tiny-src").create(2, pretrained=True, params={})  # 3 source classes → 2 target
    stored = load_file(str(weights))
    assert not classifier_keys(model) & set(stored)
    assert torch.equal(model.state_dict()["conv_stem.weight"], stored["conv_stem.weight"])
    again = run_cell(expand(suite)[2], "t", torch.device("cpu")).row  # a new cell, same backbone
    assert again["status"] == "ok" and weights.stat().st_mtime_ns == stamp


def test_changed_source_parameter_means_new_weights_and_new_cells(tiny):
    from bench.backbones import resolve_backbone

    first = expand(suite_for(entry(), ["full-fine-tune"]))[0]
    resolve_backbone(first.backbone).create(2, pretrained=True, params={})
    second = expand(suite_for(entry(epochs=2), ["full-fine-tune"]))[0]
    resolve_backbone(second.backbone).create(2, pretrained=True, params={})
    assert len(weight_files(tiny)) == 2
    assert first.key != second.key  # the cells' keys carry the pretraining spec
    third = expand(suite_for(entry(seed=1), ["full-fine-tune"]))[0]
    assert third.key not in (first.key, second.key)


def test_runner_records_the_pretraining_row_and_resumes(tiny, monkeypatch):
    from bench import runner
    from bench.run import pretrain

    suite = suite_for(entry(), ["full-fine-tune"])
    calls = []
    original = pretrain.body_state

    def dies_once(model):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt  # killed during pretraining, before the weights were saved
        return original(model)

    monkeypatch.setattr(pretrain, "body_state", dies_once)
    results = tiny / "results"
    with pytest.raises(KeyboardInterrupt):
        runner.run_suite(suite, results)
    assert weight_files(tiny) == []  # nothing half-written
    runner.run_suite(suite, results)
    (row_file,) = (results / "pretrain").glob("*.json")
    row = json.loads(row_file.read_text())
    assert row["role"] == "pretrain" and row["task"] == "tiny-shapes" and row["train_time_s"] > 0
    (weights,) = weight_files(tiny)
    stamp = weights.stat().st_mtime_ns
    row_file.unlink()
    runner.run_suite(suite, results, force=True)  # weights present: reused, row written again from the record
    assert weights.stat().st_mtime_ns == stamp and len(calls) == 2
    assert json.loads(row_file.read_text())["weights"] == weights.name


def test_workers_resolve_the_same_backbone_from_the_environment(tiny):
    from bench.backbones import pretrained_source

    parse_suite({"tasks": ["tiny-bars"], "backbones": [entry()], "strategies": ["full-fine-tune"]})
    code = ("from bench.backbones import resolve_backbone; b = resolve_backbone('tiny-src'); "
            "print(b.describe(), b.spec.digest)")
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [*"tiny-src (test_efficientnet pretrained on tiny-shapes)".split(),
                           pretrained_source._SPECS["tiny-src"].digest]


@pytest.mark.parametrize("bad, message", [
    ({"name": "x", "arch": "not-a-model", "pretrain": {"task": "mnist"}}, "not a timm model"),
    ({"name": "x", "arch": "resnet18"}, "needs exactly the keys"),
    ({"name": "x", "arch": "resnet18", "pretrain": {"task": "mnist", "epoch": 3}}, "unknown pretrain parameter"),
    ({"name": "x", "arch": "resnet18", "pretrain": {"task": "nope"}}, "unknown task"),
    ({"name": "x", "arch": "resnet18", "pretrain": {"task": "sst2"}}, "not a vision task"),
])
def test_bad_entries_are_one_line_user_errors(bad, message, tiny):
    with pytest.raises(UserError, match=message):
        parse_suite({"tasks": ["tiny-bars"], "backbones": [bad], "strategies": ["from-scratch"]})
