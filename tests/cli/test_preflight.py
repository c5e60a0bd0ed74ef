"""Fail before the run: cells that need pretrained weights nobody can provide offline stop `run` (and `fetch`) with
one line and exit 2, before the results directory is touched; cells that do not need them run.

The test session is offline (``HF_HUB_OFFLINE=1``, tests/conftest.py) and its cache holds no ``resnet18`` weights.
"""

from __future__ import annotations

import pytest
import yaml

from bench.cli.main import main
from bench.core.errors import UserError
from bench.plan.preflight import check_cells
from bench.plan.suite import expand, parse_suite
from bench.runner import check_before_run
from tests.helpers.tiny import TINY_MODEL, tiny_weights

SOURCE = ["source-only", "dann", "multi-task"]
SUITE = {"name": "pf", "tasks": ["digits"], "backbones": ["resnet18"], "strategies": ["from-scratch", *SOURCE],
         "seeds": [0, 1], "strategy_params": {s: {"source": "mnist"} for s in SOURCE}}


def one_line(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def write(tmp_path, doc: dict):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_run_refuses_cells_without_offline_weights_in_one_line_and_writes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    line = one_line(main(["run", str(write(tmp_path, SUITE)), "--results", str(results)]), capsys.readouterr().err)
    assert "6 cell(s) cannot run" in line  # 3 strategies x 2 seeds; from-scratch needs no weights
    assert "no pretrained weights for resnet18 offline" in line
    assert "digits · resnet18 · source-only · f=1 · seed=0" in line and "dann" in line  # examples, one per strategy
    assert "init: random" in line and "resnet18@/path/weights.safetensors" in line and "online" in line
    assert not results.exists()


def test_existing_results_stay_untouched(tmp_path, capsys):
    results = tmp_path / "results"
    (results / "cells").mkdir(parents=True)
    (results / "cells" / "0123456789abcdef.json").write_text('{"cell": "0123456789abcdef", "status": "ok"}')
    before = sorted(p.name for p in results.rglob("*"))
    one_line(main(["run", str(write(tmp_path, SUITE)), "--results", str(results)]), capsys.readouterr().err)
    assert sorted(p.name for p in results.rglob("*")) == before


def test_fetch_names_the_cells_it_cannot_make_runnable(tmp_path, capsys):
    line = one_line(main(["fetch", str(write(tmp_path, SUITE))]), capsys.readouterr().err)
    assert "6 cell(s) cannot run" in line


def test_the_named_fixes_work():
    cells = expand(parse_suite(SUITE | {"strategy_params": {s: {"source": "mnist", "init": "random"}
                                                             for s in SOURCE}}))
    check_cells(cells)  # init: random everywhere: nothing to load


def test_a_weights_file_is_enough(tmp_path):
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    check_cells(expand(parse_suite(SUITE | {"backbones": [f"{TINY_MODEL}@{weights}"]})))


def test_only_the_cells_kept_by_only_are_checked(tmp_path):
    suite = parse_suite(SUITE)
    check_before_run(suite, tmp_path / "results", only=["strategy=from-scratch"])  # needs no weights: runs
    with pytest.raises(UserError, match="2 cell"):
        check_before_run(suite, tmp_path / "results", only=["strategy=dann"])


def test_message_counts_rather_than_lists_many_cells():
    doc = SUITE | {"seeds": list(range(40))}
    with pytest.raises(UserError) as err:
        check_cells(expand(parse_suite(doc)))
    line = str(err.value)
    assert "120 cell(s) cannot run" in line and line.count("seed=") == 2 and "\n" not in line
