"""Where cells run: in this process (``local``), in a pool of worker processes (``process``), or on Ray (``ray``).

Every executor takes the cells still to do and yields ``(cell, row)`` as cells finish, in any order. The runner,
not the executor, records rows (``bench.runner.run_suite``), so the cell keys, the results files and resuming are
the same whichever executor ran a cell, and a suite started with one executor can be finished with another.

Why rows travel back to the runner instead of being written by the workers: Ray workers may live on machines that
do not share the runner's file system, and one writer per runner keeps logs, consolidation and the progress bar in
one place. The price is small: if the runner itself is killed, only cells that finished in the last instant (not
yet received) are lost, and those were never recorded, so a rerun computes them again; recorded ones are never
lost or recomputed, because every row is one atomically written file.

Faults, the same for ``process`` and ``ray``:
- a worker killed in the middle of a cell (SIGKILL, the kernel's OOM killer, a segfault): the cell is run again
  up to ``retries`` times, then recorded as an error row; the other cells go on;
- a cell running longer than ``cell_timeout`` seconds: its worker is killed and the cell recorded as an error row
  (not retried: a slow cell would only be slow again). ``local`` with a time limit runs each cell in one child
  process, because a cell inside the runner's own process cannot be stopped safely.
"""

from __future__ import annotations

import collections
import ctypes
import multiprocessing as mp
import os
import signal
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

try:
    import fcntl
except ModuleNotFoundError:  # Windows: one runner per results directory there
    fcntl = None

from bench.errors import UserError
from bench.progress import RunProgress
from bench.suite import Cell

EXECUTORS = ("local", "process", "ray")
Result = tuple[Cell, dict[str, Any]]


class Executor(ABC):
    """Runs cells somewhere and yields each ``(cell, row)`` as it finishes."""

    def __init__(self, device: str | None = None, workers: int | None = None, cell_timeout: float | None = None,
                 retries: int = 1):
        if workers is not None and workers < 1:
            raise UserError(f"--workers {workers}: give at least 1")
        if cell_timeout is not None and cell_timeout <= 0:
            raise UserError(f"--cell-timeout {cell_timeout}: give a positive number of seconds")
        if retries < 0:
            raise UserError(f"--retries {retries}: give 0 or more")
        self.device, self.workers, self.cell_timeout, self.retries = device, workers, cell_timeout, retries

    @abstractmethod
    def run(self, cells: list[Cell], suite_name: str, progress: RunProgress) -> Iterator[Result]:
        """Run ``cells`` and yield ``(cell, row)`` for each one, failed ones included (as error rows)."""


def make_executor(kind: str = "local", device: str | None = None, workers: int | None = None,
                  ray_address: str | None = None, cell_timeout: float | None = None, retries: int = 1) -> Executor:
    """Build the executor named ``kind`` (``local``, ``process`` or ``ray``)."""
    if ray_address is not None and kind != "ray":
        raise UserError(f"--ray-address needs --executor ray (got --executor {kind})")
    if kind == "local":
        if cell_timeout is not None:  # a cell in the runner's own process cannot be stopped: use one child
            return ProcessExecutor(device, 1, cell_timeout, retries)
        return LocalExecutor(device, workers, cell_timeout, retries)
    if kind == "process":
        return ProcessExecutor(device, workers, cell_timeout, retries)
    if kind == "ray":
        return RayExecutor(device, workers, cell_timeout, retries, address=ray_address)
    raise UserError(f"unknown executor {kind!r}; available: {', '.join(EXECUTORS)}")


def failure_row(cell: Cell, suite_name: str, error: str, wall_time_s: float, device: str | None) -> dict[str, Any]:
    """The results row of a cell that never returned one (its worker died, or it ran past the time limit)."""
    from bench import registry
    from bench.provenance import git_sha, versions

    task = registry.get("task", cell.task)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {
        "cell": cell.key, "suite": suite_name, "task": cell.task, "backbone": cell.backbone,
        "strategy": cell.strategy, "seed": cell.seed, "fraction": cell.fraction, "params": cell.params,
        "modality": task.metadata.modality, "main_metric": task.metadata.main_metric, "device": device or "auto",
        "versions": versions(), "git_sha": git_sha(), "started_at": now, "finished_at": now, "status": "error",
        "error": error, "curve": [], "batch_size_used": cell.params.get("batch_size"), "wall_time_s": wall_time_s,
    }


def consolidate_locked(results_dir: str | os.PathLike) -> None:
    """Rebuild results.parquet/csv while holding a lock on the results directory.

    Each rebuild reads cells/ and replaces the tables atomically; without the lock, two runners sharing a directory
    could finish in the order "A reads, B reads and writes, A writes" and A's older table would hide B's last rows.
    """
    from bench import results

    path = Path(results_dir) / ".consolidate.lock"
    with open(path, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        results.consolidate(results_dir)


def worker_env() -> dict[str, str]:
    """Environment a worker needs to see what the runner sees: the cache folder and the extra plugins."""
    from bench import cache

    env = {k: v for k, v in os.environ.items() if k.startswith("TRANSFERBENCH_")}
    if cache._override is not None:  # --cache-dir lives in this process only; workers get it as a variable
        env["TRANSFERBENCH_CACHE"] = str(cache._override)
    return env


# --- local ----------------------------------------------------------------------------------------------------
class LocalExecutor(Executor):
    """One cell after another in the runner's own process (the default; the progress bar shows epochs too)."""

    def run(self, cells: list[Cell], suite_name: str, progress: RunProgress) -> Iterator[Result]:
        from bench.provenance import pick_device
        from bench.runner import run_cell

        dev = pick_device(self.device)
        for cell in cells:
            progress.start_cell(cell.label(), int(cell.params.get("epochs", 1)))
            yield cell, run_cell(cell, suite_name, dev, progress)


def _import_plugins() -> None:
    """Warm a fresh worker up: plugin discovery imports every task and strategy (seconds), once per process."""
    from bench import registry

    registry.plugins("task")
    registry.plugins("strategy")


# --- process pool ---------------------------------------------------------------------------------------------
def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this worker when the runner dies, so a killed runner leaves no orphans computing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers notice the closed pipe after their current cell
        pass
    if os.getppid() != parent_pid:  # the runner died before prctl took effect
        os._exit(1)


def _worker_main(conn: Connection, env: dict[str, str], device: str | None, threads: int, parent_pid: int) -> None:
    """A pool worker: import once, then run the cells the runner sends until it sends None or goes away."""
    _die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group; the runner alone decides, and stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(env)
    try:
        import torch

        from bench.provenance import pick_device
        from bench.runner import run_cell

        _import_plugins()
        torch.set_num_threads(threads)  # workers share the cores instead of each spinning up all of them
        dev = pick_device(device)
    except BaseException:  # noqa: BLE001 - report why the worker cannot start, then exit
        conn.send(("fatal", traceback.format_exc(limit=5)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        cell, suite_name = job
        conn.send(("row", run_cell(cell, suite_name, dev)))


@dataclass
class _Worker:
    slot: int
    process: Any  # multiprocessing's SpawnProcess
    conn: Connection
    ready: bool = False  # imports done: cells sent now start at once, so their time limit is fair
    cell: Cell | None = None
    started: float = 0.0


class ProcessExecutor(Executor):
    """A pool of worker processes on this machine; with GPUs, one GPU per worker (it sees only that device).

    Own workers rather than ``concurrent.futures.ProcessPoolExecutor``: the runner must know which cell a dead
    worker was running (the standard pool breaks as a whole and fails every pending cell), and must be able to
    kill the one worker whose cell ran past the time limit.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gpus = _gpu_count(self.device)
        self.size = self.workers or self.gpus or os.cpu_count() or 1

    def run(self, cells: list[Cell], suite_name: str, progress: RunProgress) -> Iterator[Result]:
        # "spawn": a fresh interpreter per worker; forking a parent that has torch threads running can deadlock.
        ctx = mp.get_context("spawn")
        queue: collections.deque[Cell] = collections.deque(cells)
        attempts: collections.Counter[str] = collections.Counter()
        left = len(cells)
        workers = [self._spawn(ctx, slot) for slot in range(min(self.size, len(cells)))]
        try:
            while left:
                for w in workers:
                    if w.ready and w.cell is None and queue:
                        w.cell, w.started = queue.popleft(), time.monotonic()
                        attempts[w.cell.key] += 1
                        w.conn.send((w.cell, suite_name))
                self._wait(workers)
                for i, w in enumerate(workers):
                    result, replace = self._check(w, suite_name, attempts, queue, progress)
                    if replace:
                        _stop([w])
                        workers[i] = self._spawn(ctx, w.slot)
                    if result is not None:
                        left -= 1
                        yield result
        finally:
            _stop(workers)

    def _spawn(self, ctx: Any, slot: int) -> _Worker:
        env = worker_env()
        device = self.device
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(slot % self.gpus)
            device = "cuda:0"  # the only device this worker sees
        threads = max(1, (os.cpu_count() or 1) // self.size)
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_worker_main, args=(child, env, device, threads, os.getpid()),
                              name=f"transferbench-worker-{slot}")
        process.start()
        child.close()
        return _Worker(slot, process, parent)

    def _wait(self, workers: list[_Worker]) -> None:
        """Sleep until a worker sends something, dies, or the earliest running cell reaches its time limit."""
        timeout = None
        if self.cell_timeout is not None:
            deadlines = [w.started + self.cell_timeout for w in workers if w.cell is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        wait([w.conn for w in workers] + [w.process.sentinel for w in workers], timeout)

    def _check(self, w: _Worker, suite_name: str, attempts: collections.Counter[str], queue: collections.deque[Cell],
               progress: RunProgress) -> tuple[Result | None, bool]:
        """What worker ``w`` has to say: (a finished cell's result or None, whether to replace the worker)."""
        try:
            message = w.conn.recv() if w.conn.poll() else None
        except (EOFError, OSError):  # the pipe closed: the worker is gone
            message = ("gone", None)
        kind = message[0] if message else None
        if kind == "ready":
            w.ready = True
        elif kind == "row":
            cell, w.cell = w.cell, None
            return (cell, message[1]), False
        elif kind == "fatal":
            raise RuntimeError(f"a transferbench worker process could not start:\n{message[1]}")
        elif kind == "gone" or not w.process.is_alive():
            return self._died(w, suite_name, attempts, queue, progress), True
        elif w.cell is not None and self.cell_timeout is not None and \
                time.monotonic() - w.started >= self.cell_timeout:
            error = f"CellTimeout: stopped after --cell-timeout {self.cell_timeout:g}s"
            return (w.cell, failure_row(w.cell, suite_name, error, time.monotonic() - w.started, self.device)), True
        return None, False

    def _died(self, w: _Worker, suite_name: str, attempts: collections.Counter[str], queue: collections.deque[Cell],
              progress: RunProgress) -> Result | None:
        """A worker died: run its cell again while retries are left, else return the cell's error row."""
        w.process.join(5)
        code = w.process.exitcode
        why = f"killed by signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
        if not w.ready:
            raise RuntimeError(f"a transferbench worker process died while starting ({why})")
        if w.cell is None:
            return None
        cell, w.cell = w.cell, None
        if attempts[cell.key] <= self.retries:
            progress.note(f"worker {why} while running {cell.label()}; running it again "
                          f"(attempt {attempts[cell.key] + 1} of {self.retries + 1})")
            queue.appendleft(cell)
            return None
        error = f"WorkerDied: the worker process was {why} while running this cell ({attempts[cell.key]} attempt(s))"
        return cell, failure_row(cell, suite_name, error, time.monotonic() - w.started, self.device)


def _gpu_count(device: str | None) -> int:
    if device is not None and not device.startswith("cuda"):
        return 0
    import torch

    return torch.cuda.device_count()


def _stop(workers: list[_Worker]) -> None:
    """Kill workers (end of run, Ctrl-C, error, time-out): they hold nothing that could be left half-written."""
    for w in workers:
        if w.process.is_alive():
            w.process.kill()
    for w in workers:
        w.process.join(5)
        w.conn.close()


# --- Ray ------------------------------------------------------------------------------------------------------
class _StartLog:
    """A tiny Ray actor where each cell attempt signs in when it starts (after its worker's imports), so the time
    limit counts the cell alone, not a queue or the start of a fresh worker after a crash."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}

    def started(self, key: str, attempt: int) -> None:
        self.attempts[key] = attempt

    def started_attempts(self) -> dict[str, int]:
        return dict(self.attempts)


def _ray_warm_up(env: dict[str, str]) -> int:
    os.environ.update(env)
    import bench.runner  # noqa: F401

    _import_plugins()
    return os.getpid()


def _ray_cell(cell: Cell, suite_name: str, device: str | None, env: dict[str, str], log: Any, attempt: int
              ) -> dict[str, Any]:
    import ray

    os.environ.update(env)
    from bench.provenance import pick_device
    from bench.runner import run_cell

    _import_plugins()  # on a fresh worker (after a crash), before the clock starts
    if log is not None:
        log.started.remote(cell.key, attempt)
    # Ray sets CUDA_VISIBLE_DEVICES to the GPU(s) it gave this task, so "cuda" is always the right one.
    return run_cell(cell, suite_name, pick_device(device or ("cuda" if ray.get_gpu_ids() else "cpu")))


class RayExecutor(Executor):
    """One Ray task per cell: ``num_gpus=1`` where the cluster has GPUs (a fraction when ``--workers`` exceeds
    them), CPU-only otherwise. Joins the cluster at ``address`` (``auto``: the one ``ray start`` made) or starts
    a local Ray instance for this run.

    A task whose worker died is submitted again by the runner (``max_retries=0`` for Ray itself): Ray's own retry
    would hide when an attempt ended, so a time limit would also count the start of the replacement worker, and
    the progress line could not say that a cell is being rerun.
    """

    POLL_S = 0.5  # how often the start log is read while a time limit is set

    def __init__(self, *args: Any, address: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.address = address

    def run(self, cells: list[Cell], suite_name: str, progress: RunProgress) -> Iterator[Result]:
        if not cells:  # resuming a finished suite: no reason to start Ray
            return
        try:
            import ray
        except ModuleNotFoundError:
            raise UserError("--executor ray needs Ray: pip install 'transferbench[ray]'") from None
        started_here = not ray.is_initialized()
        if started_here:
            where = {"address": self.address} if self.address else {"num_cpus": self.workers or os.cpu_count()}
            # Worker logs stay in Ray's session folder: the rows carry each cell's error, the terminal the bar.
            ray.init(**where, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
        try:
            yield from self._run(ray, cells, suite_name, progress)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray: Any, cells: list[Cell], suite_name: str, progress: RunProgress) -> Iterator[Result]:
        resources = ray.cluster_resources()
        gpus = 0 if self.device and not self.device.startswith("cuda") else resources.get("GPU", 0)
        slots = self.workers or int(gpus or resources.get("CPU", 1))
        options = {"num_cpus": 1, "num_gpus": 0 if not gpus else min(1.0, round(gpus / slots, 4))}
        progress.note(f"ray: up to {slots} cell(s) at once, {options['num_gpus']:g} GPU each, on a cluster with "
                      f"{resources.get('CPU', 0):g} CPU(s) and {gpus:g} GPU(s)")
        env = worker_env()
        try:  # fail in one line if the workers cannot import transferbench, and pay the imports once per slot
            ray.get([ray.remote(_ray_warm_up).options(**options).remote(env) for _ in range(min(slots, len(cells)))])
        except ray.exceptions.RayError as err:
            raise UserError(f"Ray workers cannot import transferbench ({_first_line(err)}); install it on every "
                            "node of the cluster") from None
        self.log = ray.remote(num_cpus=0)(_StartLog).remote() if self.cell_timeout is not None else None
        task = ray.remote(_ray_cell).options(**options, max_retries=0)
        crashes = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError)
        self.attempts: collections.Counter[str] = collections.Counter()
        self.started: dict[str, tuple[int, float]] = {}  # cell key -> (attempt, when the runner saw it sign in)
        queue = collections.deque(cells)
        running: dict[Any, Cell] = {}  # in flight: at most one per slot
        try:
            while queue or running:
                while queue and len(running) < slots:
                    cell = queue.popleft()
                    self.attempts[cell.key] += 1
                    running[task.remote(cell, suite_name, self.device, env, self.log, self.attempts[cell.key])] = cell
                done, _ = ray.wait(list(running), num_returns=1, timeout=self._wait_s(ray, running))
                for ref in done:
                    cell = running.pop(ref)
                    try:
                        row = ray.get(ref)
                    except crashes as err:
                        if self.attempts[cell.key] <= self.retries:
                            progress.note(f"worker died while running {cell.label()}; running it again "
                                          f"(attempt {self.attempts[cell.key] + 1} of {self.retries + 1})")
                            queue.appendleft(cell)
                            continue
                        row = self._failure(cell, suite_name, f"WorkerDied: {_first_line(err)} "
                                            f"({self.attempts[cell.key]} attempt(s))")
                    except ray.exceptions.RayError as err:
                        row = self._failure(cell, suite_name, _first_line(err))
                    yield cell, row
                for ref, cell in list(running.items()):
                    if self.cell_timeout is not None and self._elapsed(cell) >= self.cell_timeout:
                        ray.cancel(ref, force=True)  # kills the worker process running it
                        del running[ref]
                        yield cell, self._failure(cell, suite_name,
                                                  f"CellTimeout: stopped after --cell-timeout {self.cell_timeout:g}s")
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def _failure(self, cell: Cell, suite_name: str, error: str) -> dict[str, Any]:
        return failure_row(cell, suite_name, error, self._elapsed(cell), self.device)

    def _wait_s(self, ray: Any, running: dict[Any, Cell]) -> float | None:
        """How long ``ray.wait`` may block: until the next time limit, or the next look at the start log."""
        if self.log is None:
            return None
        signed_in = ray.get(self.log.started_attempts.remote())
        for cell in running.values():
            attempt = self.attempts[cell.key]
            if signed_in.get(cell.key) == attempt and self.started.get(cell.key, (0, 0.0))[0] != attempt:
                self.started[cell.key] = (attempt, time.monotonic())  # this attempt began: its clock starts now
        left = [self.cell_timeout - self._elapsed(c) for c in running.values() if self._elapsed(c)]
        return max(0.0, min(left + [self.POLL_S]))

    def _elapsed(self, cell: Cell) -> float:
        """Run time of the cell's current attempt (0 until that attempt has signed in)."""
        attempt, since = self.started.get(cell.key, (0, 0.0))
        return time.monotonic() - since if attempt == self.attempts[cell.key] else 0.0


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
