"""Plugin discovery, names, metadata, and the seeded stratified splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.plan import registry
from bench.plan.params import strategy_params
from bench.core.errors import UserError
from bench.core.splits import make_splits, stratified_take
from bench.core.task import TaskMetadata


def test_plugins_are_discovered_and_complete():
    strategies = registry.plugins("strategy")
    assert {"from-scratch", "feature-extraction", "partial-freeze", "full-fine-tune", "zero-shot"} <= set(strategies)
    for name, s in strategies.items():
        assert s.name == name and s.description and isinstance(s.parameters, dict)
        for key, spec in strategy_params(s).items():  # every parameter declared: its default fits its own check
            spec.check(key, spec.default, f"strategy {name}")
            assert isinstance(spec.help, str), (name, key)
    tasks = registry.plugins("task")
    assert {"fashion-mnist", "mnist", "digits", "cifar10"} <= set(tasks)
    for name, t in tasks.items():
        m = t.metadata
        assert m.name == name and m.description and m.source and m.license and m.num_classes >= 2


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UserError, match="available: .*feature-extraction.*zero-shot"):
        registry.get("strategy", "zero_shot")


def test_duplicate_plugin_names_fail_loudly(monkeypatch, tmp_path):
    import sys

    pkg = tmp_path / "dupes"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    body = ("from bench.core.strategy import Strategy\nclass S{n}(Strategy):\n    name = 'same'\n"
            "    def run(self, ctx):\n        pass\n")
    (pkg / "a.py").write_text(body.format(n=1))
    (pkg / "b.py").write_text(body.format(n=2))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.PACKAGES, "strategy", "dupes")
    registry.plugins.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="two strategy plugins are named 'same'"):
            registry.plugins("strategy")
    finally:
        registry.plugins.cache_clear()
        sys.modules.pop("dupes", None)


def test_metadata_is_validated():
    with pytest.raises(ValueError, match="modality"):
        TaskMetadata("x", "d", "audio", ("a", "b"), "s", "l")
    with pytest.raises(ValueError, match="distinct"):
        TaskMetadata("x", "d", "vision", ("a", "a"), "s", "l")


def test_splits_are_stratified_disjoint_and_seeded():
    y = torch.arange(1000) % 4
    a = make_splits(y, torch.arange(200) % 4, seed=3, fraction=0.1, val_size=0.2, test_limit=40)
    b = make_splits(y, torch.arange(200) % 4, seed=3, fraction=0.1, val_size=0.2, test_limit=40)
    c = make_splits(y, torch.arange(200) % 4, seed=4, fraction=0.1, val_size=0.2, test_limit=40)
    assert np.array_equal(a.train, b.train) and not np.array_equal(a.train, c.train)
    assert len(np.intersect1d(a.train, a.val)) == 0
    assert len(a.val) == 200 and len(a.train) == 80 and len(a.test) == 40
    assert np.bincount(y.numpy()[a.train]).tolist() == [20, 20, 20, 20]
    assert np.array_equal(a.test, c.test)  # the test subset is the same for every cell


def test_stratified_take_keeps_every_class():
    labels = np.array([0] * 990 + [1] * 10)
    taken, rest = stratified_take(labels, 20, np.random.default_rng(0))
    assert len(taken) == 20 and 1 in labels[taken] and len(rest) == 980


def test_parameter_precedence_and_grids():
    from bench.plan.suite import expand, parse_suite

    suite = parse_suite({"tasks": ["digits"], "backbones": ["test_efficientnet"],
                         "strategies": ["from-scratch", "partial-freeze"],
                         "params": {"epochs": 3, "lr": 0.5},
                         "backbone_params": {"test_efficientnet": {"epochs": 4, "backbone_lr_mult": 0.5}},
                         "strategy_params": {"partial-freeze": {"trainable_stages": [1, 2], "lr": 0.1}}})
    cells = expand(suite)
    scratch = [c for c in cells if c.strategy == "from-scratch"]
    partial = [c for c in cells if c.strategy == "partial-freeze"]
    assert len(scratch) == 1 and len(partial) == 2 and len({c.key for c in cells}) == 3
    assert scratch[0].params["epochs"] == 4 and scratch[0].params["lr"] == 0.5  # suite beats strategy default
    assert sorted(c.params["trainable_stages"] for c in partial) == [1, 2]
    assert all(c.params["lr"] == 0.1 and c.params["backbone_lr_mult"] == 0.5 for c in partial)
    assert "backbone_lr_mult" not in scratch[0].params  # another strategy's parameter stays out of its key
    with pytest.raises(UserError, match="not a parameter of the suite's strategies"):
        parse_suite({"tasks": ["digits"], "backbones": ["test_efficientnet"], "strategies": ["from-scratch"],
                     "backbone_params": {"test_efficientnet": {"trainable_stages": 1}}})  # partial-freeze's only
