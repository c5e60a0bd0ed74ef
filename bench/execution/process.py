"""The process-pool executor: own worker processes on this machine; with GPUs, one GPU per worker.

Workers are killed and replaced when they die mid-cell or run past the time limit; what such a cell becomes is the
shared policy of ``bench.execution.base.Executor`` (``after_crash``, ``timed_out``).
"""

from __future__ import annotations

import collections
import ctypes
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from bench.execution.base import CellQueue, Executor, Result, import_plugins, worker_env
from bench.infra.provenance import pick_device
from bench.run.cell import run_cell
from bench.run.progress import RunProgress
from bench.plan.suite import Cell

__all__ = ["ProcessExecutor"]


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

        import_plugins()
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
        conn.send(("row", run_cell(cell, suite_name, dev)))  # a CellRecord: row, traceback, predictions


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

    @property
    def parallelism(self) -> int:
        return self.size

    def run(self, cells: list[Cell] | CellQueue, suite_name: str, progress: RunProgress) -> Iterator[Result]:
        # "spawn": a fresh interpreter per worker; forking a parent that has torch threads running can deadlock.
        ctx = mp.get_context("spawn")
        queue = CellQueue.of(cells)
        attempts: collections.Counter[str] = collections.Counter()
        workers = [self._spawn(ctx, slot) for slot in range(min(self.size, len(queue)))]
        try:
            while True:
                for w in workers:
                    if w.ready and w.cell is None and queue:
                        w.cell, w.started = queue.popleft(), time.monotonic()
                        if w.cell is None:  # the rest belongs to other runners
                            break
                        attempts[w.cell.key] += 1
                        w.conn.send((w.cell, suite_name))
                if not queue and all(w.cell is None for w in workers):
                    return
                self._wait(workers)
                for i, w in enumerate(workers):
                    result, replace = self._check(w, suite_name, attempts, queue, progress)
                    if replace:
                        _stop([w])
                        workers[i] = self._spawn(ctx, w.slot)
                    if result is not None:
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

    def _check(self, w: _Worker, suite_name: str, attempts: collections.Counter[str], queue: CellQueue,
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
            return self.timed_out(w.cell, time.monotonic() - w.started, suite_name), True
        return None, False

    def _died(self, w: _Worker, suite_name: str, attempts: collections.Counter[str], queue: CellQueue,
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
        result = self.after_crash(cell, f"process was {why}", attempts[cell.key], time.monotonic() - w.started,
                                  suite_name, progress)
        if result is None:
            queue.appendleft(cell)
        return result


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

