"""The Ray executor: one Ray task per cell (``num_gpus=1`` where GPUs exist), rows returned to the runner.

A module of its own so that Ray, an optional extra, is only imported when ``--executor ray`` is asked for. A crashed
worker and the time limit follow the shared policy of ``bench.execution.base.Executor``.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterator
from typing import Any

from bench.core.errors import UserError
from bench.execution.base import CellQueue, Executor, Result, import_plugins, worker_env
from bench.infra.provenance import pick_device
from bench.results.schema import CellRecord
from bench.core.errors import first_line
from bench.run.cell import failure_row, run_cell
from bench.run.progress import RunProgress
from bench.plan.suite import Cell


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
    import_plugins()
    return os.getpid()


def _ray_cell(cell: Cell, suite_name: str, device: str | None, env: dict[str, str], log: Any, attempt: int
              ) -> CellRecord:
    import ray

    os.environ.update(env)
    import_plugins()  # on a fresh worker (after a crash), before the clock starts
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

    def run(self, cells: list[Cell] | CellQueue, suite_name: str, progress: RunProgress) -> Iterator[Result]:
        cells = CellQueue.of(cells)
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

    def _run(self, ray: Any, cells: CellQueue, suite_name: str, progress: RunProgress) -> Iterator[Result]:
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
            raise UserError(f"Ray workers cannot import transferbench ({first_line(err)}); install it on every "
                            "node of the cluster") from None
        self.log = ray.remote(num_cpus=0)(_StartLog).remote() if self.cell_timeout is not None else None
        task = ray.remote(_ray_cell).options(**options, max_retries=0)
        crashes = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError)
        self.attempts: collections.Counter[str] = collections.Counter()
        self.started: dict[str, tuple[int, float]] = {}  # cell key -> (attempt, when the runner saw it sign in)
        queue = cells
        running: dict[Any, Cell] = {}  # in flight: at most one per slot
        try:
            while queue or running:
                while queue and len(running) < slots:
                    cell = queue.popleft()
                    if cell is None:  # the rest belongs to other runners
                        break
                    self.attempts[cell.key] += 1
                    running[task.remote(cell, suite_name, self.device, env, self.log, self.attempts[cell.key])] = cell
                if not running:  # every cell left was taken by other runners
                    break
                done, _ = ray.wait(list(running), num_returns=1, timeout=self._wait_s(ray, running))
                for ref in done:
                    cell = running.pop(ref)
                    try:
                        yield cell, ray.get(ref)
                    except crashes as err:
                        result = self.after_crash(cell, f"died ({first_line(err)})", self.attempts[cell.key],
                                                  self._elapsed(cell), suite_name, progress)
                        if result is None:
                            queue.appendleft(cell)
                        else:
                            yield result
                    except ray.exceptions.RayError as err:
                        yield cell, CellRecord(failure_row(cell, suite_name, first_line(err), self._elapsed(cell),
                                                           self.device))
                for ref, cell in list(running.items()):
                    if self.cell_timeout is not None and self._elapsed(cell) >= self.cell_timeout:
                        ray.cancel(ref, force=True)  # kills the worker process running it
                        del running[ref]
                        yield self.timed_out(cell, self._elapsed(cell), suite_name)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

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


