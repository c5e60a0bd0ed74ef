"""Domain adaptation and multi-task strategies on a tiny generated source/target pair, through the real run_cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench import results
from bench.backbones import resolve_backbone
from bench.core.errors import UserError
from bench.core.task import Split, Task, TaskData, TaskMetadata
from bench.run import features
from bench.plan import registry
from bench.run.cell import run_cell
from bench.run.taskdata import load_task_data
from bench.run.context import RunContext
from bench.run.grl import GradientReversal, dann_lambda, grad_reverse
from bench.run.joint import multitask_loss
from bench.plan.suite import expand, parse_suite
from bench.runner import run_suite, select
from tests.helpers.tiny import TINY_MODEL, TinyShapes, register, shapes_images

PARAMS = {"image_size": 16, "epochs": 2, "batch_size": 32, "eval_batch_size": 64, "min_steps_per_epoch": 2,
          "val_size": 30}
SHAPES = TinyShapes.metadata.classes


class TinyTarget(Task):
    """The shapes at 8×8 pixels with a brighter background (a shifted domain, as digits is to MNIST)."""

    metadata = TaskMetadata(name="tiny-target", description="shifted tiny shapes (tests only)", modality="vision",
                            classes=tuple(reversed(SHAPES)), source="generated", license="CC0")

    def load(self, path: Path | None = None) -> TaskData:
        def make(n, seed):
            x, y = shapes_images(n, seed=seed, size=8)
            return Split((x + 40).clamp(max=255), 2 - y)  # classes listed in reverse order: labels follow

        return TaskData(make(240, 3), make(60, 4), "generated")


class TinyLetters(Task):
    """Two classes with other names: a mismatched source for domain adaptation, an auxiliary task for multi-task."""

    metadata = TaskMetadata(name="tiny-letters", description="two generated classes (tests only)",
                            modality="vision", classes=("left", "right"), source="generated", license="CC0")

    def load(self, path: Path | None = None) -> TaskData:
        x, y = shapes_images(200, seed=5)
        keep = y < 2
        return TaskData(Split(x[keep], y[keep]), Split(x[keep][:40], y[keep][:40]), "generated")


@pytest.fixture()
def tasks(monkeypatch):
    register(monkeypatch, "task", TinyShapes(), TinyTarget(), TinyLetters())
    load_task_data.cache_clear()
    features._ENCODED.clear()  # the encoding cache the target and the source share


def suite(strategies, source="tiny-shapes", fractions=(1.0,), seeds=(0,), **params):
    # No pretrained weights offline for the tiny model: every source strategy starts from a random init.
    own = {s: {"source": source, "init": "random"} for s in strategies if s != "from-scratch"}
    for s, extra in params.pop("strategy_params", {}).items():
        own[s] = own.get(s, {}) | extra
    return parse_suite({"name": "da", "tasks": ["tiny-target"], "backbones": [TINY_MODEL], "strategies": strategies,
                        "params": PARAMS | params, "fractions": list(fractions), "seeds": list(seeds),
                        "strategy_params": own})


@pytest.mark.parametrize("strategy", ["source-only", "source-then-target", "dann", "multi-task"])
def test_source_strategies_run_through_run_cell(strategy, tasks):
    extra = {"multi-task": {"source": "tiny-letters"}, "source-only": {}, "source-then-target": {}, "dann": {}}
    (cell,) = expand(suite([strategy], strategy_params={strategy: {"init": "random"} | extra[strategy]}))
    row = run_cell(cell, "t", torch.device("cpu")).row
    assert row["status"] == "ok", row["error"]
    assert row["source_task"] == ("tiny-letters" if strategy == "multi-task" else "tiny-shapes")
    assert row["weights_source"] == "random init"
    assert [p["epoch"] for p in row["curve"]] == [0, 1, 2] and row["throughput"] > 0
    assert 0 <= row["accuracy"] <= 1 and row["n_test"] == 60
    assert row["trainable_params"] <= row["total_params"]


def test_dann_beats_source_only_on_the_shifted_pair(tasks):
    """Not only runs: the target lists the classes in reverse order (source labels are mapped by name) and its
    images are smaller and brighter. Source-only still beats chance (1/3); DANN, seeing the unlabelled target
    images but no target label, must do clearly better (on this pair: 0.63 vs 0.77; a mix-up would sink both)."""
    rows = {}
    for strategy in ("source-only", "dann"):
        spec = {strategy: {"init": "random"} | ({"target_labels": False} if strategy == "dann" else {})}
        (cell,) = expand(suite([strategy], epochs=8, min_steps_per_epoch=8, lr=0.01, strategy_params=spec))
        rows[strategy] = run_cell(cell, "t", torch.device("cpu")).row
        assert rows[strategy]["status"] == "ok", rows[strategy]["error"]
    assert rows["source-only"]["val_accuracy"] > 0.9  # the source's validation split: no target label seen
    assert rows["source-only"]["accuracy"] > 0.4
    assert rows["dann"]["accuracy"] > rows["source-only"]["accuracy"] + 0.1


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    y = grad_reverse(x, 0.25)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.25 * w)
    x.grad = None
    (GradientReversal(2.0)(x) * w).sum().backward()
    assert torch.allclose(x.grad, -2.0 * w)
    assert dann_lambda(0.0) == 0.0 and 0.99 < dann_lambda(1.0) < 1.0 and dann_lambda(0.2) < dann_lambda(0.5)


def test_suite_time_checks_are_one_line(tasks):
    with pytest.raises(UserError, match="have different classes") as err:
        suite(["dann"], source="tiny-letters")
    assert "\n" not in str(err.value) and "class_map" in str(err.value)
    with pytest.raises(UserError, match="needs a source task"):
        parse_suite({"tasks": ["tiny-target"], "backbones": [TINY_MODEL], "strategies": ["source-only"]})
    with pytest.raises(UserError, match="unknown task 'tiny-nope'"):
        suite(["dann"], source="tiny-nope")
    with pytest.raises(UserError, match="not a class of source"):
        suite(["dann"], source="tiny-letters", strategy_params={"dann": {"class_map": {"up": "bar"}}})
    with pytest.raises(UserError, match="source-only.*class_map"):
        suite(["source-only"], strategy_params={"source-only": {"class_map": ["bar"]}})
    # Multi-task heads have their own classes: no class match needed; a class_map makes a mismatch fine for DA.
    suite(["multi-task"], source="tiny-letters")
    mapped = suite(["source-only"], source="tiny-letters",
                   strategy_params={"source-only": {"class_map": {"left": "square top left", "right": "bar"}}})
    (cell,) = expand(mapped)
    row = run_cell(cell, "t", torch.device("cpu")).row
    assert row["status"] == "ok", row["error"]


def test_class_map_maps_labels_and_drops_unmapped_classes(tasks):
    (cell,) = expand(suite(["source-only"], strategy_params={"source-only": {"class_map": {"bar": "bar"}}}))
    target = registry.get("task", "tiny-target")
    ctx = RunContext(target, load_task_data("tiny-target"), resolve_backbone(TINY_MODEL), dict(cell.params), 0, 1.0,
                      torch.device("cpu"))
    train = ctx.source_split("train")
    assert set(train.y.tolist()) == {TinyTarget.metadata.classes.index("bar")}
    assert len(train) + len(ctx.source_split("val")) < 300  # the two square classes were dropped


def _run_dann(params, data: TaskData, splits=None):
    target = registry.get("task", "tiny-target")
    torch.manual_seed(0)
    ctx = RunContext(target, data, resolve_backbone(TINY_MODEL), params, 0, 0.5, torch.device("cpu"))
    if splits is not None:
        ctx.splits = splits  # the same validation/labelled samples as the first run
    return ctx, registry.get("strategy", "dann").run(ctx)


@pytest.mark.parametrize("target_labels", [False, True])
def test_unsupervised_dann_never_reads_target_training_labels(target_labels, tasks):
    (cell,) = expand(suite(["dann"], strategy_params={"dann": {"init": "random", "target_labels": target_labels}}))
    data = load_task_data("tiny-target")
    ctx, first = _run_dann(dict(cell.params), data)
    y = data.train.y.clone()
    rest = np.setdiff1d(np.arange(len(y)), ctx.splits.val)
    y[rest] = y[rest][torch.randperm(len(rest), generator=torch.Generator().manual_seed(1))]
    assert (y[rest] != data.train.y[rest]).any()
    permuted = TaskData(Split(data.train.x, y), data.test, "generated-permuted")  # another source: no cache hit
    _, second = _run_dann(dict(cell.params), permuted, ctx.splits)
    same = (first.accuracy == second.accuracy and
            [p.get("train_loss") for p in first.curve] == [p.get("train_loss") for p in second.curve])
    assert same is (not target_labels)  # with target labels on, the permutation must show


def test_aux_weight_zero_gives_the_single_task_gradient():
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU())
    model = torch.nn.Sequential(body, torch.nn.Linear(6, 3))
    aux_head = torch.nn.Linear(6, 5)
    target = ((torch.randn(8, 12),), torch.randint(0, 3, (8,)))
    aux = ((torch.randn(8, 12) * 3 + 1,), torch.randint(0, 5, (8,)))

    def grads(weights, batches):
        model.zero_grad()
        aux_head.zero_grad()
        loss, _, _ = multitask_loss(model, [aux_head], body, batches, weights)
        loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    single = grads([1.0], [target])
    assert all(torch.allclose(a, b) for a, b in zip(grads([1.0, 0.0], [target, aux]), single))
    assert not all(torch.allclose(a, b) for a, b in zip(grads([1.0, 0.5], [target, aux]), single))


def test_resume_and_only_know_the_source(tasks, tmp_path):
    da = suite(["source-only", "from-scratch"], source=["tiny-shapes", "tiny-target"], seeds=(0, 1), epochs=1,
               min_steps_per_epoch=1)
    cells = expand(da)
    assert len(cells) == 6 and len({c.key for c in cells}) == 6  # the source list expands as a grid
    assert {c.params.get("source") for c in select(cells, ["source=tiny-shapes"])} == {"tiny-shapes"}
    assert len(select(cells, ["source=tiny-shapes"])) == 2
    first = run_suite(da, tmp_path, only=["strategy=source-only"])
    assert first.ran == 4
    second = run_suite(da, tmp_path)
    assert (second.ran, second.skipped_done) == (2, 4)
    frame = results.load_results(tmp_path)
    assert len(frame) == 6 and (frame["status"] == "ok").all()
    assert sorted(frame["source_task"].dropna()) == ["tiny-shapes"] * 2 + ["tiny-target"] * 2
