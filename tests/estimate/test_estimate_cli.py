"""`transferbench estimate`: estimate rows on a tiny generated task with the tiny timm model, resume, anchor, errors."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from bench.cli.main import main
from bench.estimate import scores
from bench.infra import cache
from bench.results import load_results, read_cell_rows
from bench.run import features as features_module
from bench.run.taskdata import load_task_data
from tests.helpers.text_fixtures import TinySentiment, vectors_table, write_word2vec_text
from tests.helpers.tiny import TINY_MODEL, TinyShapes, register, tiny_weights

PARAMS = {"image_size": 16, "epochs": 2, "batch_size": 32, "eval_batch_size": 64, "min_steps_per_epoch": 2,
          "val_size": 30}


@pytest.fixture()
def tiny(monkeypatch, tmp_path):
    register(monkeypatch, "task", TinyShapes(), TinySentiment())
    load_task_data.cache_clear()
    monkeypatch.setattr(cache, "_override", tmp_path / "cache")
    features_module._FEATURES.clear()
    return f"{TINY_MODEL}@{tiny_weights(tmp_path / 'tiny.safetensors')}"


def write_suite(path, backbones, tasks=("tiny-shapes",), **extra):
    doc = {"name": "est", "tasks": list(tasks), "backbones": backbones, "strategies": ["feature-extraction"],
           "params": PARAMS, **extra}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return str(path)


def estimate_rows(results):
    return {r["backbone"]: r for r in read_cell_rows(results).values() if r.get("role") == "estimate"}


def test_estimate_writes_rows_with_a_random_init_anchor_and_rerun_skips_them(tiny, tmp_path, capsys):
    suite, results = write_suite(tmp_path / "s.yaml", [tiny]), tmp_path / "results"
    assert main(["estimate", suite, "--results", str(results), "--samples", "120"]) == 0
    assert "2 estimate(s) computed (0 failed), 0 already recorded" in capsys.readouterr().out
    rows = estimate_rows(results)
    assert set(rows) == {tiny, f"{tiny}@random"}
    for row in rows.values():
        assert row["status"] == "ok", row["error"]
        assert row["strategy"] == "estimate" and row["task"] == "tiny-shapes" and row["fraction"] == 1.0
        assert row["n_estimate_samples"] == 120 and row["n_features"] > 0 and row["wall_time_s"] > 0
        for col in ("logme", "h_score", "nce", "leep"):
            assert math.isfinite(row[col]), col
        assert row["leep"] <= 0 and row["nce"] <= 0 and row["h_score"] >= 0
    assert rows[f"{tiny}@random"]["random_init"] and not rows[tiny]["random_init"]
    assert rows[tiny]["source_head"] == "ImageNet-1k classifier"
    assert rows[f"{tiny}@random"]["weights_source"].startswith("random init")
    # The helper's "pretrained" file is the seed-0 random init itself: loaded from disk it must score exactly like
    # the anchor (same network through two code paths, two feature-cache entries).
    for col in ("logme", "h_score", "nce", "leep"):
        assert rows[tiny][col] == pytest.approx(rows[f"{tiny}@random"][col], rel=1e-6), col
    assert len(list((cache.cache_dir() / "features").glob("tiny-shapes-train-*"))) == 2

    stamps = {p.name: p.stat().st_mtime_ns for p in (results / "cells").glob("*.json")}
    assert main(["estimate", suite, "--results", str(results), "--samples", "120"]) == 0
    assert "0 estimate(s) computed (0 failed), 2 already recorded" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (results / "cells").glob("*.json")} == stamps
    frame = load_results(results)  # consolidated with the rest; the tables carry the score columns
    assert {"logme", "h_score", "nce", "leep", "n_estimate_samples", "role"} <= set(frame.columns)
    assert (results / "results.parquet").is_file()
    # Another sample budget is another estimate.
    assert main(["estimate", suite, "--results", str(results), "--samples", "60"]) == 0
    assert "2 estimate(s) computed" in capsys.readouterr().out


def test_the_anchor_differs_from_real_pretrained_weights(tiny, tmp_path):
    """With weights that are not the seed-0 init, pretrained and anchor rows differ (the anchor is not a copy)."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(123)
    model = timm.create_model(TINY_MODEL, pretrained=False, num_classes=1000)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "other.safetensors"))
    other = f"{TINY_MODEL}@{tmp_path / 'other.safetensors'}"
    results = tmp_path / "r"
    assert main(["estimate", write_suite(tmp_path / "s.yaml", [other]), "--results", str(results)]) == 0
    rows = estimate_rows(results)
    assert rows[other]["logme"] != pytest.approx(rows[f"{other}@random"]["logme"])
    assert rows[other]["n_estimate_samples"] == 270  # all of train (300 - 30 validation) under the default 2000


def test_text_backbones_get_logme_and_h_score_only(tiny, tmp_path):
    vectors = str(write_word2vec_text(tmp_path / "tiny.vec", vectors_table()))
    results = tmp_path / "r"
    suite = write_suite(tmp_path / "s.yaml", [vectors], tasks=["tiny-sentiment"])
    assert main(["estimate", suite, "--results", str(results)]) == 0
    rows = estimate_rows(results)
    assert set(rows) == {vectors, f"{vectors}@random"}
    for row in rows.values():
        assert row["status"] == "ok", row["error"]
        assert math.isfinite(row["logme"]) and math.isfinite(row["h_score"])
        assert row["nce"] is None and row["leep"] is None and row["source_head"] is None
    # Sentiment words carry the label in the pretrained vectors: they must beat random vectors.
    assert rows[vectors]["logme"] > rows[f"{vectors}@random"]["logme"]


def test_an_estimator_value_error_becomes_an_error_row(tiny, tmp_path, monkeypatch, capsys):
    def refuse(features, labels):
        raise ValueError("features have rank 0 (all zeros?); LogME needs informative features")

    monkeypatch.setitem(scores.ESTIMATORS, "logme", scores.EstimatorInfo("logme", refuse, False, "", ""))
    results = tmp_path / "r"
    assert main(["estimate", write_suite(tmp_path / "s.yaml", [tiny]), "--results", str(results)]) == 0
    assert "2 estimate(s) computed (2 failed)" in capsys.readouterr().out
    row = estimate_rows(results)[tiny]
    assert row["status"] == "error" and "rank 0" in row["error"] and "tiny-shapes" in row["error"]
    assert not (results / "logs").exists()  # a user-facing error, not a crash: no traceback file
    monkeypatch.undo()  # errors are retried on the next run
    register(monkeypatch, "task", TinyShapes(), TinySentiment())
    monkeypatch.setattr(cache, "_override", tmp_path / "cache")
    assert main(["estimate", str(tmp_path / "s.yaml"), "--results", str(results)]) == 0
    assert all(r["status"] == "ok" for r in estimate_rows(results).values())


@pytest.mark.parametrize("argv, message", [
    (["--samples", "3"], "--samples 3: too few"),
    (["--only", "backbone=nope"], "no estimates match"),
    (["--only", "seed=0"], "estimate filters are task=NAME or backbone=NAME"),
])
def test_bad_arguments_are_one_line_errors(tiny, tmp_path, capsys, argv, message):
    suite = write_suite(tmp_path / "s.yaml", [tiny])
    assert main(["estimate", suite, "--results", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_estimate_rows_keep_json_columns_readable(tiny, tmp_path):
    results = tmp_path / "r"
    assert main(["estimate", write_suite(tmp_path / "s.yaml", [tiny]), "--results", str(results)]) == 0
    raw = json.loads(next((results / "cells").glob("est-*.json")).read_text())
    assert json.loads(raw["params"])["image_size"] == 16 and raw["role"] == "estimate"


def test_the_source_head_on_pooled_features_gives_the_models_logits(tiny):
    """NCE/LEEP apply the classifier to the cached pre-logits features instead of a second forward pass."""
    import torch

    from bench.backbones import resolve_backbone
    from tests.helpers.tiny import shapes_images

    backbone = resolve_backbone(tiny)
    model = backbone.create(1000, True, PARAMS).eval()
    (x,) = backbone.transform((shapes_images(8, seed=3)[0],), PARAMS)
    with torch.no_grad():
        logits = model(x)
        via_features = backbone.head(model)(backbone.features(backbone.feature_model(PARAMS), x))
    assert torch.allclose(logits, via_features, atol=1e-5)


def test_rerun_retries_error_rows_skips_ok_ones_and_force_recomputes_all(tiny, tmp_path, monkeypatch, capsys):
    """Resume goes through the runner's row loop (``bench.run.rowloop``); the estimate itself is faked here: the
    anchor fails on the first run only, so the rerun retries it alone and ``force`` recomputes both."""
    from bench.run import estimate
    from bench.plan.suite import load_suite

    suite, results = load_suite(write_suite(tmp_path / "s.yaml", [tiny])), tmp_path / "r"
    computed, anchor_fails = [], True

    def fake_row(cell, suite_name, device):
        fails = cell.random and anchor_fails
        computed.append(cell.label_backbone)
        row = {"cell": cell.key, "task": cell.task, "backbone": cell.label_backbone, "strategy": "estimate",
               "seed": 0, "fraction": cell.fraction, "params": cell.params, "role": "estimate",
               "status": "error" if fails else "ok", "error": "no features" if fails else None,
               "logme": 1.0, "n_estimate_samples": 10, "wall_time_s": 0.5}
        return row, "Traceback: no features" if fails else None

    monkeypatch.setattr(estimate, "estimate_row", fake_row)
    plan = [c.label_backbone for c in estimate.plan_estimates(suite, 100)]
    first = estimate.run_estimates(suite, results, samples=100)
    assert (first.ran, first.failed, first.skipped_done) == (2, 1, 0) and computed == plan
    assert (results / "logs").is_dir() and len(list((results / "logs").glob("est-*.txt"))) == 1
    assert "error   " in capsys.readouterr().err
    computed.clear()
    anchor_fails = False
    second = estimate.run_estimates(suite, results, samples=100)
    assert (second.ran, second.failed, second.skipped_done) == (1, 0, 1) and computed == [f"{tiny}@random"]
    assert "1 of 2 estimates already recorded" in capsys.readouterr().err
    computed.clear()
    third = estimate.run_estimates(suite, results, samples=100, force=True)
    assert (third.ran, third.skipped_done) == (2, 0) and computed == plan
    assert all(row["status"] == "ok" for row in estimate_rows(results).values())
