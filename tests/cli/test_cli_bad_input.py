"""Bad input ends with one clear line and exit code 2; nothing already recorded is lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """name: t
tasks: [digits]
backbones: [test_efficientnet]
strategies: [from-scratch]
"""

CASES = {
    "malformed-yaml": ("tasks: [digits\nbackbones: x", "malformed YAML"),
    "unknown-key": (GOOD + "epoch: 3\n", "unknown key 'epoch'"),
    "unknown-strategy": (GOOD.replace("from-scratch", "from-scrach"), "did you mean 'from-scratch'"),
    "unknown-task": (GOOD.replace("[digits]", "[digitz]"), "unknown task 'digitz'"),
    "unknown-backbone": (GOOD.replace("test_efficientnet", "no_such_net"), "unknown backbone 'no_such_net'"),
    "fraction-zero": (GOOD + "fractions: [0.0, 0.5]\n", "outside (0, 1]"),
    "fraction-above-one": (GOOD + "fractions: [1.5]\n", "outside (0, 1]"),
    "unknown-param": (GOOD + "params: {epochz: 2}\n", "unknown parameter 'epochz'"),
    "empty-list": (GOOD.replace("[from-scratch]", "[]"), "'strategies' is empty"),
    "empty-matrix": (GOOD.replace("[test_efficientnet]", "[glove-6b-50d]"), "expands to no cells"),
    "not-a-mapping": ("- just\n- a list\n", "must be a YAML mapping"),
}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command in a fresh process: proves no traceback reaches the user."""
    env = dict(os.environ, CI="true")
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}, timeout=300)


def main_inprocess(*args: str, capsys) -> subprocess.CompletedProcess:
    """``bench.cli.main`` in this process (fast); an escaping exception would fail the test."""
    from bench.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_suite_gives_one_line_and_exit_2(case, tmp_path, capsys):
    text, expected = CASES[case]
    if case == "empty-matrix":
        pytest.importorskip("gensim")  # the word-vector backbone must exist for this case to mean "no pairs"
    suite = tmp_path / "suite.yaml"
    suite.write_text(text)
    results = tmp_path / "results"
    (results / "cells").mkdir(parents=True)
    keep = results / "cells" / "0123456789abcdef.json"
    keep.write_text('{"cell": "0123456789abcdef", "status": "ok"}')
    proc = main_inprocess("run", str(suite), "--results", str(results), capsys=capsys)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert expected in lines[0]
    assert keep.read_text() == '{"cell": "0123456789abcdef", "status": "ok"}'  # nothing recorded is lost


def test_missing_suite_file_in_a_real_process(tmp_path):
    proc = run_cli("run", "nope.yaml", cwd=tmp_path)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.returncode == 2 and "not found" in proc.stderr and "quick" in proc.stderr


def test_only_filter_errors(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text(GOOD)
    proc = main_inprocess("run", str(suite), "--only", "strategy", capsys=capsys)
    assert proc.returncode == 2 and "expected KEY=VALUE" in proc.stderr
    proc = main_inprocess("run", str(suite), "--only", "strategy=zero-shot", capsys=capsys)
    assert proc.returncode == 2 and "no cells match" in proc.stderr


def test_report_on_missing_results(tmp_path, capsys):
    proc = main_inprocess("report", str(tmp_path / "nothing"), capsys=capsys)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_list_shows_plugins(tmp_path, capsys):
    proc = main_inprocess("list", capsys=capsys)
    assert proc.returncode == 0
    for name in ("from-scratch", "feature-extraction", "partial-freeze", "full-fine-tune", "zero-shot",
                 "fashion-mnist", "mnist", "digits", "cifar10", "quick", "trainable_stages"):
        assert name in proc.stdout


def test_fetch_unknown_name(tmp_path, capsys):
    proc = main_inprocess("fetch", "no-such-asset", capsys=capsys)
    assert proc.returncode == 2 and "nothing to fetch" in proc.stderr
