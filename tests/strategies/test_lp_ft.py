"""LP-FT: the probe is a correct logistic regression, it lands in the model's head, and stage 1 reuses the
feature cache feature-extraction fills."""

from __future__ import annotations

import pytest
import torch

from bench.run.cell import run_cell
from bench.run.taskdata import load_task_data
from bench.plan.suite import expand, parse_suite
from strategies.lp_ft import single_linear  # stage 1's solver is bench.run.probe (tests/run/test_probe.py)
from tests.helpers.tiny import TINY_MODEL, TinyShapes, register, tiny_weights

PARAMS = {"image_size": 16, "epochs": 2, "batch_size": 32, "eval_batch_size": 64, "min_steps_per_epoch": 2,
          "val_size": 30}


def test_single_linear_recognises_heads():
    lin = torch.nn.Linear(4, 2)
    assert single_linear(lin) is lin
    assert single_linear(torch.nn.Sequential(torch.nn.Dropout(0.1), lin)) is lin
    assert single_linear(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), lin)) is None


@pytest.fixture()
def tiny(monkeypatch, tmp_path):
    from bench.infra import cache
    from bench.run import features as features_module

    register(monkeypatch, "task", TinyShapes())
    load_task_data.cache_clear()
    monkeypatch.setattr(cache, "_override", tmp_path / "fresh-cache")
    features_module._FEATURES.clear()
    return f"{TINY_MODEL}@{tiny_weights(tmp_path / 'tiny.safetensors')}"


def cell(strategy: str, backbone: str, **params):
    suite = parse_suite({"tasks": ["tiny-shapes"], "backbones": [backbone], "strategies": [strategy],
                         "params": PARAMS | params})
    (only,) = expand(suite)
    return only


def test_stage_one_reuses_the_feature_cache(tiny):
    from bench.infra import cache
    from bench.run import features as features_module

    first = run_cell(cell("lp-ft", tiny), "t", torch.device("cpu")).row
    assert first["status"] == "ok", first["error"]
    files = sorted((cache.cache_dir() / "features").glob("tiny-shapes-*"))
    assert len(files) == 1  # only the train split is probed
    stamps = [f.stat().st_mtime_ns for f in files]
    features_module._FEATURES.clear()  # read from disk, not memory
    second = run_cell(cell("lp-ft", tiny), "t", torch.device("cpu")).row
    assert [f.stat().st_mtime_ns for f in files] == stamps  # nothing recomputed
    assert second["feature_time_s"] < first["feature_time_s"]
    # feature-extraction reads the same train file (one key for both strategies) and adds only the test split
    fe = run_cell(cell("feature-extraction", tiny), "t", torch.device("cpu")).row
    assert fe["status"] == "ok"
    assert files[0].stat().st_mtime_ns == stamps[0]
    assert len(list((cache.cache_dir() / "features").glob("tiny-shapes-*"))) == 2


def test_the_probe_is_loaded_into_the_head(tiny):
    """Fine-tuning at lr 0 leaves the model as stage 1 made it: its accuracy is the probe's, well above chance."""
    row = run_cell(cell("lp-ft", tiny, lr=0.0, epochs=1), "t", torch.device("cpu")).row
    assert row["status"] == "ok", row["error"]
    assert row["val_accuracy"] > 0.6, row["val_accuracy"]  # a fresh random head sits near 1/3
