"""A corpus of malformed suites and command lines: each ends with exit 2, exactly one line on stderr, no traceback,
and the results directory untouched. Plus a property test: any generated suite document is either accepted or
refused with the one-line user error, never another exception."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.core.errors import UserError
from bench.plan.suite import parse_suite

GOOD = {"name": "t", "tasks": ["digits"], "backbones": ["test_efficientnet"], "strategies": ["from-scratch"]}


def suite_text(**changes) -> str:
    doc = dict(GOOD)
    for key, value in changes.items():
        if value is KeyError:
            doc.pop(key)
        else:
            doc[key] = value
    return yaml.safe_dump(doc)


# name: (suite file content (str) or bytes, text expected in the one line)
SUITES = {
    "epochs-not-a-number": (suite_text(params={"epochs": "many"}), "params.epochs: 'many'"),
    "epochs-negative": (suite_text(params={"epochs": -1}), "params.epochs: -1"),
    "epochs-float": (suite_text(params={"epochs": 2.5}), "an integer"),
    "batch-size-zero": (suite_text(params={"batch_size": 0}), "params.batch_size: 0"),
    "lr-word": (suite_text(params={"lr": "fast"}), "params.lr: 'fast'"),
    "lr-negative": (suite_text(params={"lr": -0.1}), "params.lr: -0.1"),
    "lr-nan": ("name: t\ntasks: [digits]\nbackbones: [test_efficientnet]\nstrategies: [from-scratch]\n"
               "params: {lr: .nan}\n", "params.lr"),
    "image-size-negative": (suite_text(params={"image_size": -5}), "params.image_size: -5"),
    "precision-unknown": (suite_text(params={"precision": "fp8"}), "one of 'auto', 'bf16', 'fp32'"),
    "compile-string": (suite_text(params={"compile": "yes"}), "true or false"),
    "huge-seed": (suite_text(seeds=[99999999999999999999999]), "seed 99999999999999999999999"),
    "negative-seed": (suite_text(seeds=[-1]), "seed -1"),
    "bool-seed": (suite_text(seeds=[True]), "seed True"),
    "string-seed": (suite_text(seeds=["zero"]), "seed 'zero'"),
    "fraction-string": (suite_text(fractions=["half"]), "fraction 'half'"),
    "fraction-zero": (suite_text(fractions=[0]), "outside (0, 1]"),
    "fraction-huge": (suite_text(fractions=[1e308]), "outside (0, 1]"),
    "name-path-trick": (suite_text(name="../../x"), "not a safe directory name"),
    "name-absolute": (suite_text(name="/etc/passwd"), "not a safe directory name"),
    "name-dot": (suite_text(name=".hidden"), "not a safe directory name"),
    "name-number": (suite_text(name=123), "not a safe directory name"),
    "unknown-top-key": (suite_text(epoch=3), "unknown key 'epoch'"),
    "missing-tasks": (suite_text(tasks=KeyError), "missing key 'tasks'"),
    "empty-strategies": (suite_text(strategies=[]), "'strategies' is empty"),
    "params-not-mapping": (suite_text(params=[1, 2]), "params"),
    "strategy-param-unknown": (suite_text(strategy_params={"from-scratch": {"momentum": 0.9}}),
                               "has no parameter 'momentum'"),
    "strategy-param-bad-value": (suite_text(strategy_params={"from-scratch": {"lr": [0.1, -1]}}),
                                 "strategy_params.from-scratch.lr: -1"),
    "strategy-params-other-strategy": (suite_text(strategy_params={"zero-shot": {}}), "not in 'strategies'"),
    "backbone-params-unknown-backbone": (suite_text(backbone_params={"resnet18": {"epochs": 2}}),
                                         "not in 'backbones'"),
    "backbone-params-bad-value": (suite_text(backbone_params={"test_efficientnet": {"epochs": 0}}),
                                  "backbone_params.test_efficientnet.epochs: 0"),
    "unknown-strategy": (suite_text(strategies=["from-scrach"]), "did you mean 'from-scratch'"),
    "unknown-task": (suite_text(tasks=["digitz"]), "unknown task 'digitz'"),
    "task-mapping-bad-kind": (suite_text(tasks=[{"name": "x", "kind": "video", "path": "/tmp"}]), "video"),
    "task-mapping-missing-path": (suite_text(tasks=[{"name": "x", "kind": "image-folder", "path": "/no/such"}]),
                                  "/no/such"),
    "yaml-list": ("- a\n- b\n", "must be a YAML mapping"),
    "yaml-scalar": ("just text\n", "must be a YAML mapping"),
    "yaml-empty": ("", "must be a YAML mapping"),
    "yaml-tabs": ("name: t\n\ttasks: [digits]\n", "malformed YAML"),
    "yaml-unclosed": ("tasks: [digits\n", "malformed YAML"),
    "yaml-non-string-key": ("1: a\ntasks: [digits]\n", "is not a name"),
    "yaml-python-tag": ("!!python/object/apply:os.system ['echo hi']\n", "malformed YAML"),
    "binary-file": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a text file"),
    "search-empty-space": (suite_text(search={"sampler": "grid", "space": {}}), "search"),
    "search-unknown-hyperparameter": (suite_text(search={"trials": 2, "space": {"momentum": [0.9]}}), "momentum"),
    "search-low-above-high": (suite_text(search={"trials": 2, "space": {"lr": {"low": 1, "high": 0.1}}}), "low"),
    "search-zero-trials": (suite_text(search={"trials": 0, "space": {"lr": [0.1]}}), "trials"),
    "search-log-nonpositive": (suite_text(search={"trials": 2, "space": {"lr": {"low": 0, "high": 1, "log": True}}}),
                               "log"),
}

COMMANDS = {
    "unknown-executor": (["run", "{suite}", "--executor", "dask"], "invalid choice: 'dask'"),
    "zero-workers": (["run", "{suite}", "--workers", "0"], "--workers"),
    "negative-timeout": (["run", "{suite}", "--cell-timeout", "-5"], "--cell-timeout"),
    "workers-word": (["run", "{suite}", "--workers", "many"], "--workers"),
    "unknown-list-topic": (["list", "everything"], "invalid choice: 'everything'"),
    "unknown-verb": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "results-under-a-file": (["run", "{suite}", "--results", "{file}/sub"], "cannot write there"),
    "only-without-equals": (["run", "{suite}", "--only", "strategy"], "expected KEY=VALUE"),
    "only-unknown-key": (["run", "{suite}", "--only", "colour=red"], "unknown key 'colour'"),
    "ray-address-without-ray": (["run", "{suite}", "--ray-address", "auto"], "--ray-address needs --executor ray"),
    "missing-suite": (["run", "nope.yaml"], "not found"),
    "report-missing-results": (["report", "{tmp}/nothing"], "results not found"),
    "report-file-without-status": (["report", "{table}"], "has no 'status' column"),
    "summary-missing-results": (["summary", "{tmp}/nothing"], "results not found"),
}


def _results_dir(tmp_path):
    results = tmp_path / "results"
    (results / "cells").mkdir(parents=True)
    keep = results / "cells" / "0123456789abcdef.json"
    keep.write_text('{"cell": "0123456789abcdef", "status": "ok"}')
    return results, keep


def _assert_one_line(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("case", list(SUITES))
def test_bad_suite_corpus(case, tmp_path, capsys):
    from bench.cli import main

    text, expected = SUITES[case]
    suite = tmp_path / "suite.yaml"
    suite.write_bytes(text if isinstance(text, bytes) else text.encode())
    results, keep = _results_dir(tmp_path)
    before = sorted(p.name for p in results.rglob("*"))
    code = main(["run", str(suite), "--results", str(results)])
    line = _assert_one_line(code, capsys.readouterr().err)
    assert expected in line, line
    assert sorted(p.name for p in results.rglob("*")) == before  # nothing written, nothing removed
    assert keep.read_text() == '{"cell": "0123456789abcdef", "status": "ok"}'


@pytest.mark.parametrize("case", list(COMMANDS))
def test_bad_command_corpus(case, tmp_path, capsys):
    from bench.cli import main

    suite = tmp_path / "suite.yaml"
    suite.write_text(suite_text())
    afile = tmp_path / "a-file"
    afile.write_text("")
    table = tmp_path / "table.csv"
    table.write_text("cell,task,backbone,strategy,seed,fraction\nabc,digits,x,y,0,1.0\n")
    args = [a.format(suite=suite, file=afile, tmp=tmp_path, table=table) for a in COMMANDS[case][0]]
    line = _assert_one_line(main(args), capsys.readouterr().err)
    assert COMMANDS[case][1] in line, line


def test_corpus_is_large_enough():
    assert len(SUITES) + len(COMMANDS) >= 30


def test_bad_command_in_a_real_process(tmp_path):
    """argparse's own exit path, in a fresh interpreter: still one line, exit 2."""
    import sys

    proc = subprocess.run([sys.executable, "-m", "bench.cli", "list", "nonsense"], capture_output=True, text=True,
                          timeout=300)
    _assert_one_line(proc.returncode, proc.stderr)


# --- property test ----------------------------------------------------------------------------------------------
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["digits", "from-scratch", "test_efficientnet", "zero-shot",
                                                           "epochs", "lr", "auto"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
KEYS = ["name", "description", "tasks", "backbones", "strategies", "seeds", "fractions", "params",
        "strategy_params", "backbone_params", "check", "search", "budget", "bogus"]
documents = st.one_of(
    values,
    st.fixed_dictionaries({k: st.just(v) for k, v in GOOD.items()},
                          optional={k: values for k in KEYS if k not in GOOD}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_document_is_accepted_or_refused_in_one_line(doc):
    try:
        parse_suite(doc, where="generated.yaml")
    except UserError as err:
        message = str(err)
        assert message and "\n" not in message and "Traceback" not in message
