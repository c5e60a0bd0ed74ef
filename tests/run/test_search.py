"""Hyperparameter search: the same search for every strategy on validation, the selection run on every seed."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from bench import results
from bench.core.errors import UserError
from bench.core.task import Split, TaskData
from bench.plan.search import Range, StrategySearch, TrialResult, best_trial, suggest
from bench.plan.suite import expand, parse_suite
from bench.run.train import planned_epochs, steps_per_epoch
from bench.runner import run_suite
from tests.cli.test_cli_bad_input import main_inprocess
from tests.helpers.tiny import TINY_MODEL, TinyShapes, register

TINY = {"image_size": 16, "epochs": 1, "batch_size": 32, "min_steps_per_epoch": 1, "val_size": 50, "test_limit": 60}
SUITE = {"name": "search", "tasks": ["digits"], "backbones": ["test_efficientnet"], "strategies": ["from-scratch"],
         "seeds": [0, 1], "fractions": [0.2], "params": TINY,
         "search": {"sampler": "grid", "trials": 2, "space": {"lr": [0.0003, 0.01]}}}


def rows(path) -> dict[str, dict]:
    """The recorded rows, with their JSON-text params decoded."""
    found = results.read_cell_rows(path)
    return {k: r | {"params": json.loads(r["params"])} for k, r in found.items()}


def by_role(path, role: str) -> list[dict]:
    return sorted((r for r in rows(path).values() if r["role"] == role), key=lambda r: (r["seed"], r["trial"] or 0))


def test_plain_suites_keep_their_cell_keys():
    """Keys computed by the code before the search existed: a suite without search: resumes its old results.
    (Zero-shot's keys changed once, on purpose, when it gained the ``invert`` parameter.)"""
    suite = parse_suite({"tasks": ["digits"], "backbones": ["test_efficientnet"], "strategies": ["from-scratch",
                         "zero-shot"], "seeds": [0, 1], "fractions": [0.5], "params": {"epochs": 1, "lr": 0.01}})
    keys = [c.key for c in expand(suite)]
    assert keys[:2] == ["a3b155e8b10c39f8", "5bae488e0ac0a6bb"]  # from-scratch, seeds 0 and 1
    assert len(set(keys)) == 4


def test_grid_of_two_gives_two_trials_then_finals_on_every_seed(tmp_path):
    summary = run_suite(parse_suite(SUITE), tmp_path)
    # 2 trials on seed 0, then finals on seeds 0 and 1: seed 0's final is the selected trial's own row (same
    # parameters, same seed: the same run), so 3 cells run for 4 rows.
    assert (summary.total, summary.ran, summary.failed) == (4, 3, 0)
    trials, finals = by_role(tmp_path, "search"), by_role(tmp_path, "final")
    assert [t["trial"] for t in trials] == [0, 1] and {t["seed"] for t in trials} == {0}
    assert sorted(t["params"]["lr"] for t in trials) == [0.0003, 0.01]
    best = max(trials, key=lambda t: (t["val_accuracy"], -t["trial"]))
    assert [f["seed"] for f in finals] == [0, 1]
    for final in finals:  # the selection is recoverable from the final rows alone
        assert final["selected_from"] == best["cell"] and final["params"]["lr"] == best["params"]["lr"]
        assert "selected trial" in final["search_note"]
    assert set(json.loads((tmp_path / "plan.json").read_text())["cells"]) == set(rows(tmp_path))


def test_resume_never_reruns_a_finished_trial(tmp_path):
    suite = parse_suite(SUITE | {"seeds": [0, 1, 2]})
    first = run_suite(suite, tmp_path, only=["role=search"])  # interrupted after the search: no finals yet
    assert (first.ran, len(by_role(tmp_path, "final"))) == (2, 0)
    stamps = {k: r["started_at"] for k, r in rows(tmp_path).items()}
    second = run_suite(suite, tmp_path)
    assert (second.ran, second.skipped_done) == (3, 2)  # only the finals ran
    for key, stamp in stamps.items():
        assert rows(tmp_path)[key]["started_at"] == stamp
    victim = by_role(tmp_path, "final")[1]["cell"]
    (results.cells_dir(tmp_path) / f"{victim}.json").unlink()
    third = run_suite(suite, tmp_path)
    assert (third.ran, third.skipped_done) == (1, 4) and victim in rows(tmp_path)


@pytest.mark.parametrize("sampler", ["random", "grid", "tpe"])
def test_trial_k_depends_on_k_not_on_waves_or_values(sampler):
    """Resume rebuilds Optuna's history from the rows; the next suggestions are those of an uninterrupted run."""
    space = {"lr": Range(1e-4, 1e-1, log=True), "batch_size": [16, 32]} if sampler != "grid" else \
        {"lr": [1e-4, 1e-3, 1e-2], "batch_size": [16, 32]}
    search = StrategySearch(sampler, 6, 7, space)
    sequential: list[TrialResult] = []
    for k in range(6):
        sequential.append(TrialResult(k, suggest(search, "g", sequential), 0.1 * k))
    one_wave: list[TrialResult] = []
    for k in range(6):
        one_wave.append(TrialResult(k, suggest(search, "g", one_wave), None))  # all asked before any finished
    if sampler == "tpe":  # TPE learns from values: only its first (random start-up) trials agree
        assert [t.params for t in sequential[:3]] == [t.params for t in one_wave[:3]]
    else:
        assert [t.params for t in sequential] == [t.params for t in one_wave]
    if sampler == "grid":
        assert len({json.dumps(t.params, sort_keys=True) for t in sequential}) == 6  # each grid point once
    assert suggest(search, "other group", []) != sequential[0].params or sampler == "grid"


def test_selection_ties_go_to_the_first_trial_and_failures_never_win():
    history = [TrialResult(0, {"lr": 1}, None), TrialResult(1, {"lr": 2}, 0.5), TrialResult(2, {"lr": 3}, 0.5)]
    assert best_trial(history).number == 1
    assert best_trial([TrialResult(0, {}, None)]) is None


@pytest.mark.parametrize("executor", ["process"])
def test_the_executor_does_not_change_the_selection(tmp_path, executor):
    suite = parse_suite(SUITE | {"seeds": [0], "search": {"sampler": "random", "trials": 3, "seed": 3,
                                                           "space": {"lr": {"low": 1e-4, "high": 3e-2, "log": True}}}})
    run_suite(suite, tmp_path / "local")
    run_suite(suite, tmp_path / executor, executor=executor, workers=2)
    for role in ("search", "final"):
        local, other = by_role(tmp_path / "local", role), by_role(tmp_path / executor, role)
        assert [(r["cell"], r["selected_from"], r["params"]) for r in local] == \
            [(r["cell"], r["selected_from"], r["params"]) for r in other]


def test_budget_steps_set_the_epochs(tmp_path):
    assert planned_epochs({"epochs": 9, "budget_steps": 20}, 6) == 3
    assert planned_epochs({"epochs": 9, "budget_steps": 2}, 6) == 1
    assert planned_epochs({"epochs": 9}, 6) == 9
    suite = parse_suite(SUITE | {"seeds": [0], "budget": {"steps": 12}, "search": None})
    run_suite(suite, tmp_path)
    (row,) = rows(tmp_path).values()
    per_epoch = steps_per_epoch(row["n_train"], 32, 1)
    assert row["budget_steps"] == 12 and row["epochs_run"] == max(1, round(12 / per_epoch)) != 1


def test_strategies_search_only_what_they_have():
    suite = parse_suite(SUITE | {"strategies": ["from-scratch", "zero-shot", "full-fine-tune"],
                                 "search": {"sampler": "random", "trials": 3, "space": {"lr": [0.1, 0.2]}},
                                 "strategy_params": {"full-fine-tune": {"search": {
                                     "space": {"backbone_lr_mult": [0.1, 1.0]}, "trials": 5}}}})
    zero, why = suite.search.for_strategy("zero-shot")
    assert zero is None and "no search: zero-shot" in why
    full, _ = suite.search.for_strategy("full-fine-tune")
    assert full.trials == 5 and set(full.space) == {"lr", "backbone_lr_mult"}
    assert suite.search.for_strategy("from-scratch")[0].trials == 3
    assert "search" not in suite.strategy_params["full-fine-tune"]


BAD = {
    "unknown-hyperparameter": ({"space": {"lrr": [0.1]}}, "unknown hyperparameter 'lrr'"),
    "empty-space": ({"space": {}}, "'search.space' is empty"),
    "empty-values": ({"space": {"lr": []}}, "search.space.lr is an empty list"),
    "zero-trials": ({"trials": 0, "space": {"lr": [0.1]}}, "search.trials 0 must be an integer of at least 1"),
    "low-above-high": ({"sampler": "tpe", "trials": 2, "space": {"lr": {"low": 1, "high": 0.1}}}, "above high"),
    "log-nonpositive": ({"sampler": "random", "trials": 2, "space": {"lr": {"low": 0, "high": 1, "log": True}}},
                        "log range with low 0"),
    "unknown-sampler": ({"sampler": "bayes", "space": {"lr": [0.1]}}, "search.sampler 'bayes' is unknown"),
    "grid-with-range": ({"sampler": "grid", "space": {"lr": {"low": 0.1, "high": 1}}}, "grid sampler needs lists"),
    "refit": ({"refit": True, "space": {"lr": [0.1]}}, "not supported yet"),
    "unknown-key": ({"spaces": {"lr": [0.1]}}, "unknown key 'spaces' in 'search'"),
    "not-a-mapping": ([1, 2], "'search' must be a mapping"),
    "missing-trials": ({"sampler": "tpe", "space": {"lr": [0.1]}}, "search.trials is missing"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_search_block_is_one_line(case):
    block, expected = BAD[case]
    with pytest.raises(UserError) as err:
        parse_suite(SUITE | {"search": block})
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_bad_override_and_budget_are_one_line():
    with pytest.raises(UserError, match="strategy_params.from-scratch.search.space names unknown hyperparameter"):
        parse_suite(SUITE | {"strategy_params": {"from-scratch": {"search": {"space": {"trainable_stages": [1]}}}}})
    with pytest.raises(UserError, match="needs a top-level search"):
        parse_suite(SUITE | {"search": None, "strategy_params": {"from-scratch": {"search": {"trials": 2}}}})
    with pytest.raises(UserError, match="budget.steps 0 must be a positive integer"):
        parse_suite(SUITE | {"budget": {"steps": 0}})


def test_bad_search_via_the_cli_exits_2_with_one_line(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text("tasks: [digits]\nbackbones: [test_efficientnet]\nstrategies: [from-scratch]\n"
                     "search: {sampler: grid, trials: 0, space: {lr: [0.1]}}\n")
    proc = main_inprocess("run", str(suite), "--results", str(tmp_path / "r"), capsys=capsys)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "search.trials 0" in proc.stderr


def test_summary_verb_prints_the_verdict_of_final_rows(tmp_path, capsys):
    run_suite(parse_suite(SUITE | {"seeds": [0]}), tmp_path)
    proc = main_inprocess("summary", str(tmp_path), capsys=capsys)
    assert proc.returncode == 0 and "from-scratch" in proc.stdout
    proc = main_inprocess("summary", str(tmp_path / "missing"), capsys=capsys)
    assert proc.returncode == 2 and "results not found" in proc.stderr


class _Shapes(TinyShapes):
    metadata = dataclasses.replace(TinyShapes.metadata, name="tiny-shapes-f1", main_metric="macro_f1")


class _PermutedTestShapes(TinyShapes):
    """The same task with its TEST labels shuffled: a selection that peeked at test would change."""

    metadata = dataclasses.replace(TinyShapes.metadata, name="tiny-shapes-permuted", main_metric="macro_f1")

    def load(self, path=None) -> TaskData:
        data = super().load(path)
        shuffled = data.test.y[torch.randperm(len(data.test.y), generator=torch.Generator().manual_seed(0))]
        return TaskData(data.train, Split(data.test.x, shuffled), data.source)


def test_selection_reads_validation_only(tmp_path, monkeypatch):
    register(monkeypatch, "task", _Shapes(), _PermutedTestShapes())
    suite = parse_suite({"tasks": ["tiny-shapes-f1", "tiny-shapes-permuted"], "backbones": [TINY_MODEL],
                         "strategies": ["from-scratch"], "seeds": [0], "fractions": [1.0],
                         "params": TINY | {"val_size": 30, "test_limit": None, "batch_size": 64},
                         "search": {"sampler": "grid", "space": {"lr": [1e-4, 3e-3, 3e-2]}}})
    run_suite(suite, tmp_path)
    found = rows(tmp_path).values()
    finals = {r["task"]: r for r in found if r["role"] == "final"}
    trials = {task: sorted((r["params"]["lr"], r["val_macro_f1"]) for r in found
                           if r["role"] == "search" and r["task"] == task) for task in finals}
    assert trials["tiny-shapes-f1"] == trials["tiny-shapes-permuted"]  # validation is the same data
    assert len({f1 for _, f1 in trials["tiny-shapes-f1"]}) > 1  # the search had something to choose
    plain, permuted = finals["tiny-shapes-f1"], finals["tiny-shapes-permuted"]
    assert plain["params"]["lr"] == permuted["params"]["lr"]
    best = max(trials["tiny-shapes-f1"], key=lambda t: t[1])
    assert plain["params"]["lr"] == best[0]
    assert plain["macro_f1"] != permuted["macro_f1"]  # the permutation did reach the test scores
