"""Cell claims: several runners on one results directory compute each cell once, take over the claims of runners
that died, and lose nothing when one is killed mid-cell. Real runner processes, real signals.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from bench.infra.claims import Claims, claims_dir
from bench.plan.suite import expand, parse_suite
from bench.runner import run_suite
from tests.execution.test_executors import ROOT, cell_rows, probes
from tests.execution.test_executors import plugin_env  # noqa: F401 - module fixture shared with the contract tests

pytestmark = pytest.mark.usefixtures("plugin_env")


def dead_pid() -> int:
    """The pid of a process of this host that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_claim(results_dir: Path, key: str, *, host: str, pid: int, age_s: float = 0.0) -> Path:
    path = claims_dir(results_dir) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "run": "someone-else"}), encoding="utf-8")
    old = time.time() - age_s
    os.utime(path, (old, old))
    return path


def held(results_dir: Path) -> list[str]:
    """The cells someone holds a claim on (the steal lock and renamed files start with a dot)."""
    folder = claims_dir(results_dir)
    return [p.name for p in folder.iterdir() if not p.name.startswith(".")] if folder.is_dir() else []


# --- the claims themselves --------------------------------------------------------------------------------------
def test_a_claim_is_held_once_and_released(tmp_path):
    with Claims(tmp_path, timeout_s=60) as first, Claims(tmp_path, timeout_s=60) as second:
        assert first.take("cell-a") and first.take("cell-a")  # taking one's own claim again is fine
        assert not second.take("cell-a")
        assert second.holder("cell-a") == first.owner
        first.release("cell-a")
        assert second.take("cell-a")
    assert not held(tmp_path)  # leaving the block releases what is still held


def test_a_claim_whose_heartbeat_stopped_is_taken_over(tmp_path):
    write_claim(tmp_path, "cell-a", host="another-machine", pid=1, age_s=120)
    write_claim(tmp_path, "cell-b", host="another-machine", pid=1, age_s=10)
    with Claims(tmp_path, timeout_s=60) as claims:
        assert claims.take("cell-a")  # 120 s without a heartbeat: its runner is gone
        assert not claims.take("cell-b")  # 10 s: alive as far as anyone can tell from here
        assert claims.took_over == 1
        assert claims.holder("cell-a") == claims.owner


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    write_claim(tmp_path, "cell-a", host=socket.gethostname(), pid=dead_pid())
    write_claim(tmp_path, "cell-b", host=socket.gethostname(), pid=os.getppid())  # alive
    with Claims(tmp_path, timeout_s=600) as claims:
        assert claims.take("cell-a")
        assert not claims.take("cell-b")


def test_the_heartbeat_keeps_a_held_claim_fresh(tmp_path):
    with Claims(tmp_path, timeout_s=0.6) as owner:
        assert owner.take("cell-a")
        time.sleep(1.5)  # 2.5 timeouts: only the heartbeat (every 0.1 s) keeps it from looking stale
        with Claims(tmp_path, timeout_s=0.6) as other:
            assert not other.take("cell-a")


def test_of_many_runners_taking_over_one_stale_claim_exactly_one_wins(tmp_path):
    for round_ in range(20):
        key = f"cell-{round_}"
        write_claim(tmp_path, key, host="another-machine", pid=1, age_s=120)
        runners = [Claims(tmp_path, timeout_s=60) for _ in range(8)]
        start = threading.Barrier(len(runners))
        won: list[bool] = [False] * len(runners)

        def steal(i: int, key=key, start=start, runners=runners, won=won) -> None:
            start.wait()
            won[i] = runners[i].take(key)

        threads = [threading.Thread(target=steal, args=(i,)) for i in range(len(runners))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(won) == 1, f"round {round_}: {sum(won)} winners"
        assert Claims(tmp_path).holder(key) == runners[won.index(True)].owner
    assert not list(claims_dir(tmp_path).glob(".*.stolen-*"))  # no renamed leftovers


# --- runners sharing a results directory ------------------------------------------------------------------------
def runner_command(suite_file: Path, results_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "run", str(suite_file), "--results", str(results_dir), *extra]


def ran_count(output: str) -> tuple[int, int]:
    """(cells run, cells recorded by another runner) from the run's last line."""
    line = output.strip().splitlines()[-1]
    ran = int(line.split(" cell(s) run")[0])
    others = int(line.split(" recorded by another runner")[0].rsplit(", ", 1)[1]) if "another runner" in line else 0
    return ran, others


def test_two_runner_processes_compute_each_cell_once(tmp_path):
    suite_file = tmp_path / "probes.yaml"
    suite_file.write_text(yaml.safe_dump(probes(["none"], seeds=6, sleep_s=1.0)), encoding="utf-8")
    env = dict(os.environ)
    runners = [subprocess.Popen(runner_command(suite_file, tmp_path / "out"), env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in runners]
    assert [r.returncode for r in runners] == [0, 0], outputs
    counts = [ran_count(out) for out, _ in outputs]
    assert sum(ran for ran, _ in counts) == 6, counts  # each of the 6 cells computed by exactly one runner
    assert all(ran >= 1 for ran, _ in counts), counts  # and both did a share
    rows = cell_rows(tmp_path / "out")
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows.values())
    assert not held(tmp_path / "out")


def test_a_runner_killed_mid_cell_loses_nothing_and_another_finishes(tmp_path):
    suite_file = tmp_path / "probes.yaml"
    suite_file.write_text(yaml.safe_dump(probes(["none"], seeds=3, sleep_s=1.5)), encoding="utf-8")
    out = tmp_path / "out"
    victim = subprocess.Popen(runner_command(suite_file, out), env=dict(os.environ), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not held(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # in the middle of the claimed cell
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    left_behind = held(out)
    assert left_behind, "the killed runner held a claim"
    suite = parse_suite(probes(["none"], seeds=3, sleep_s=1.5))
    summary = run_suite(suite, out, claim_timeout=600)  # its pid is dead: no need to wait out the timeout
    rows = cell_rows(out)
    assert set(rows) == {c.key for c in expand(suite)} and all(r["status"] == "ok" for r in rows.values())
    assert summary.ran == 3 - summary.skipped_done
    assert set(left_behind) <= {k for k in rows}
    assert not held(out)


def test_a_cell_held_by_a_live_runner_is_waited_for_not_computed_again(tmp_path):
    """Another runner (simulated by a claim with a live pid) finishes the cell while this one waits for it."""
    suite = parse_suite(probes(["none"], seeds=2, sleep_s=0.0))
    held, free = expand(suite)
    write_claim(tmp_path, held.key, host=socket.gethostname(), pid=os.getppid())

    def other_runner_finishes() -> None:
        while not (tmp_path / "cells" / f"{free.key}.json").exists():  # this runner did its share first
            time.sleep(0.05)
        time.sleep(0.5)
        row = json.loads((tmp_path / "cells" / f"{free.key}.json").read_text(encoding="utf-8"))
        (tmp_path / "cells" / f"{held.key}.json").write_text(json.dumps(row | {"cell": held.key, "seed": 0}))
        (claims_dir(tmp_path) / held.key).unlink()

    helper = threading.Thread(target=other_runner_finishes)
    helper.start()
    summary = run_suite(suite, tmp_path, claim_timeout=30)
    helper.join()
    assert (summary.ran, summary.by_others) == (1, 1)
    assert set(cell_rows(tmp_path)) == {held.key, free.key}


def test_force_recomputes_rows_but_not_a_cell_another_live_runner_holds(tmp_path):
    suite = parse_suite(probes(["none"], seeds=2, sleep_s=0.0))
    run_suite(suite, tmp_path)
    held, _ = expand(suite)
    write_claim(tmp_path, held.key, host=socket.gethostname(), pid=os.getppid())

    def other_runner_finishes() -> None:
        time.sleep(1.0)
        path = tmp_path / "cells" / f"{held.key}.json"
        path.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")  # its fresh row
        (claims_dir(tmp_path) / held.key).unlink()

    helper = threading.Thread(target=other_runner_finishes)
    helper.start()
    summary = run_suite(suite, tmp_path, force=True, claim_timeout=30)
    helper.join()
    assert (summary.ran, summary.by_others) == (1, 1)


def test_two_runners_share_a_search_and_agree_on_its_waves(tmp_path):
    spec = probes(["none"], seeds=2, sleep_s=0.5) | {"search": {"sampler": "grid", "space": {"lr": [0.1, 0.2, 0.3]}}}
    suite_file = tmp_path / "search.yaml"
    suite_file.write_text(yaml.safe_dump(spec), encoding="utf-8")
    alone = run_suite(parse_suite(spec), tmp_path / "alone")
    env = dict(os.environ)
    runners = [subprocess.Popen(runner_command(suite_file, tmp_path / "out", "--executor", "process", "--workers",
                                               "1"), env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in runners]
    assert [r.returncode for r in runners] == [0, 0], outputs
    assert sum(ran_count(out)[0] for out, _ in outputs) == alone.ran  # no trial and no final ran twice
    shared, single = cell_rows(tmp_path / "out"), cell_rows(tmp_path / "alone")
    assert set(shared) == set(single)  # the same trials (waves) and the same finals
    finals = {k: r["selected_from"] for k, r in shared.items() if r["role"] == "final"}
    assert finals == {k: r["selected_from"] for k, r in single.items() if r["role"] == "final"}
