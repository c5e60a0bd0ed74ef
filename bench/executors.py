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
        from bench.executor_ray import RayExecutor  # Ray is an optional extra: import it only when asked for

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


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
