"""Faults, each one a test: a worker SIGKILLed mid-cell, the runner SIGKILLed mid-matrix, a cell past its time
limit, damaged results and cache files, Ctrl-C. Real processes, real signals, a real local Ray instance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from bench import results
from bench.runner import run_suite
from bench.plan.suite import expand, parse_suite
from tests.execution.test_executors import ROOT, cell_rows, executor_kwargs, probes
from tests.execution.test_executors import plugin_env, ray_local  # noqa: F401 - module fixtures shared with the contract tests

# Ray variants cost a Ray start and fresh Ray workers (tens of seconds on 2 cores): in CI the Ray contract tests
# run by default (tests/execution/test_executors.py); these Ray fault variants run with -m slow.
SLOW_RAY = pytest.param("ray", marks=pytest.mark.slow)
PARALLEL = ["process", SLOW_RAY]
pytestmark = pytest.mark.usefixtures("plugin_env")


def by_fault(results_dir: Path) -> dict[str, dict]:
    return {json.loads(r["params"])["fault"]: r for r in cell_rows(results_dir).values()}


@pytest.mark.parametrize("kind", PARALLEL)
def test_worker_killed_mid_cell_is_rerun_or_reported_and_the_rest_finishes(kind, tmp_path, request):
    suite = parse_suite(probes(["none", "kill-once", "kill"], seeds=1, marker=str(tmp_path / "markers")))
    summary = run_suite(suite, tmp_path / "out", retries=1, **executor_kwargs(kind, request))
    rows = by_fault(tmp_path / "out")
    assert rows["none"]["status"] == "ok"
    assert rows["kill-once"]["status"] == "ok"  # killed on its first attempt, rerun, finished
    assert rows["kill"]["status"] == "error" and rows["kill"]["error"].startswith("WorkerDied")
    assert "2 attempt(s)" in rows["kill"]["error"]
    assert (summary.ran, summary.failed) == (3, 1)
    recorded = {k: r["finished_at"] for k, r in cell_rows(tmp_path / "out").items()}

    again = run_suite(suite, tmp_path / "out", **executor_kwargs(kind, request))
    assert (again.ran, again.skipped_done) == (0, 3)  # nothing missing, nothing recomputed
    retried = run_suite(suite, tmp_path / "out", retry_errors=True, retries=0, **executor_kwargs(kind, request))
    assert (retried.ran, retried.failed) == (1, 1)  # only the failed cell, reported after one attempt this time
    rows = by_fault(tmp_path / "out")
    assert "1 attempt(s)" in rows["kill"]["error"]
    assert all(rows[f]["finished_at"] == recorded[rows[f]["cell"]] for f in ("none", "kill-once"))


@pytest.mark.parametrize("kind", ["local", "process", SLOW_RAY])
def test_cell_past_its_time_limit_is_stopped_and_recorded_as_an_error(kind, tmp_path, request):
    suite = parse_suite(probes(["none", "hang"]))
    t0 = time.monotonic()
    summary = run_suite(suite, tmp_path, cell_timeout=3, **executor_kwargs(kind, request))
    rows = by_fault(tmp_path)
    assert rows["none"]["status"] == "ok"
    assert rows["hang"]["status"] == "error" and rows["hang"]["error"].startswith("CellTimeout")
    assert 3 <= rows["hang"]["wall_time_s"] < 10  # stopped near the limit, not after the hour it wanted
    assert summary.failed == 1 and time.monotonic() - t0 < 120


def _tagged_processes(tag: str) -> list[int]:
    """Processes (ours: runner, workers, Ray) whose environment carries ``tag``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and tag.encode() in (proc / "environ").read_bytes():
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                found += [int(proc.name)] if state != "Z" else []
        except OSError:
            continue
    return found


def _start_runner(tmp_path: Path, seeds: int, *extra: str, ctrl_c: bool = False
                  ) -> tuple[subprocess.Popen, Path, str]:
    suite_file, out, tag = tmp_path / "suite.yaml", tmp_path / "out", uuid.uuid4().hex
    suite_file.write_text(yaml.safe_dump(probes(["none"], seeds=seeds, sleep_s=1.0)))
    # ctrl_c: the runner gets SIGINT's default disposition, as from a terminal. A test run started as a background
    # job of a non-interactive shell (`bash .ci/run &`) inherits SIGINT *ignored*, Python then keeps ignoring it,
    # and the runner would rightly finish the matrix (a CI run saw exit 0 after all cells).
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if ctrl_c else None
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "run", str(suite_file), "--results", str(out), *extra],
                            cwd=ROOT, env=os.environ | {"CI": "1", "TB_TEST_TAG": tag}, preexec_fn=preexec,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    return proc, out, tag


def _wait_for_cells(proc: subprocess.Popen, out: Path, n: int, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while len(list((out / "cells").glob("*.json"))) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the runner recorded too few cells in time"
        time.sleep(0.1)


# Ray's per-node agents outlive a SIGKILLed driver for a while (Ray's behaviour: they compute no cells); the
# runner, pool workers, Ray workers, raylet and GCS must all be gone.
RAY_AGENTS = (b"ray::DashboardAgent", b"ray::RuntimeEnvAgent")


def _no_survivors(tag: str, limit_s: float = 15) -> list[int]:
    def survivors() -> list[int]:
        return [pid for pid in _tagged_processes(tag) if not _cmdline(pid).startswith(RAY_AGENTS)]

    deadline = time.monotonic() + limit_s
    while survivors() and time.monotonic() < deadline:
        time.sleep(0.2)
    return survivors()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("kind", ["local", "process", SLOW_RAY])
def test_runner_killed_mid_matrix_loses_nothing_and_recomputes_nothing(kind, tmp_path):
    seeds = 8
    proc, out, tag = _start_runner(tmp_path, seeds, "--executor", kind, "--workers", "2")
    _wait_for_cells(proc, out, 3)
    proc.kill()  # the runner alone: its pool workers and Ray processes must not outlive it
    proc.communicate()
    assert _no_survivors(tag) == []  # no orphan worker goes on computing
    recorded = {p.stem: p.read_text() for p in (out / "cells").glob("*.json")}
    assert len(recorded) >= 3 and not list((out / "cells").glob(".*.tmp"))

    summary = run_suite(parse_suite(probes(["none"], seeds=seeds, sleep_s=1.0)), out, executor="local")
    assert summary.skipped_done == len(recorded)  # zero finished cells lost
    assert summary.ran == seeds - len(recorded)  # zero recomputed
    assert all((out / "cells" / f"{k}.json").read_text() == text for k, text in recorded.items())


def test_ctrl_c_stops_cleanly_and_records_nothing_half_written(tmp_path):
    seeds = 8
    proc, out, tag = _start_runner(tmp_path, seeds, "--executor", "process", "--workers", "2", ctrl_c=True)
    _wait_for_cells(proc, out, 2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground process group
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert _no_survivors(tag) == []
    assert not list((out / "cells").glob(".*.tmp")) and not list(out.glob(".*.tmp"))
    damaged = []
    rows = results.read_cell_rows(out, on_damaged=lambda p, why: damaged.append(p))
    assert not damaged and 2 <= len(rows) < seeds


def test_damaged_results_file_is_reported_in_one_line_and_only_its_cell_recomputed(tmp_path, capfd):
    suite = parse_suite(probes(["none"], seeds=3))
    run_suite(suite, tmp_path)
    keys = [c.key for c in expand(suite)]
    kept = {k: (tmp_path / "cells" / f"{k}.json").read_text() for k in keys[1:]}
    broken = tmp_path / "cells" / f"{keys[0]}.json"
    broken.write_text(broken.read_text()[:40])  # truncated, as a crash in a non-atomic writer would leave it
    (tmp_path / "results.parquet").write_bytes(b"PAR1 garbage")
    capfd.readouterr()

    summary = run_suite(suite, tmp_path)
    warnings = [line for line in capfd.readouterr().err.splitlines() if "damaged cell file" in line]
    assert len(warnings) == 1 and broken.name in warnings[0]
    assert (summary.ran, summary.skipped_done) == (1, 2)
    assert all((tmp_path / "cells" / f"{k}.json").read_text() == text for k, text in kept.items())
    assert json.loads(broken.read_text())["status"] == "ok"
    assert len(results.load_results(tmp_path / "results.parquet")) == 3  # the table is rebuilt whole


def test_damaged_feature_cache_is_recomputed_not_trusted(tmp_path):
    from bench.infra.cache import cache_dir

    suite = parse_suite(probes(["features"], seeds=1))
    run_suite(suite, tmp_path)
    (cache_file,) = (cache_dir() / "features").glob("digits-train-*.safetensors")
    cache_file.write_bytes(cache_file.read_bytes()[:100])  # truncated, as a crash mid-write would leave it
    from bench.run import features as cell

    cell._FEATURES.clear()  # forget the in-memory copy: read the damaged file as a new process would
    summary = run_suite(suite, tmp_path, force=True)
    assert summary.failed == 0 and by_fault(tmp_path)["features"]["status"] == "ok"
    assert cell._load_features(cache_file)[0].numel() > 0  # rebuilt and readable again
