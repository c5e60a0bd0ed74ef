"""Where cells run: in this process (``local``), a pool of worker processes (``process``), or Ray (``ray``).

Executors import the one-cell runner (``bench.run.cell``) and the executor contract (``base``); the orchestrator
(``bench.runner``) imports executors, never the reverse.
"""

from __future__ import annotations

from bench.core.errors import UserError
from bench.execution.base import Executor, Result
from bench.execution.local import LocalExecutor
from bench.execution.process import ProcessExecutor

__all__ = ["EXECUTORS", "Executor", "Result", "make_executor"]

EXECUTORS = ("local", "process", "ray")


def make_executor(kind: str = "local", device: str | None = None, workers: int | None = None,
                  ray_address: str | None = None, cell_timeout: float | None = None, retries: int = 1) -> Executor:
    """Build the executor named ``kind`` (``local``, ``process`` or ``ray``)."""
    if kind not in EXECUTORS:
        raise UserError(f"unknown executor {kind!r}; available: {', '.join(EXECUTORS)}")
    if ray_address is not None and kind != "ray":
        raise UserError(f"--ray-address needs --executor ray (got --executor {kind})")
    if kind == "local":
        if cell_timeout is not None:  # a cell in the orchestrator's own process cannot be stopped: use one child
            return ProcessExecutor(device, 1, cell_timeout, retries)
        return LocalExecutor(device, workers, cell_timeout, retries)
    if kind == "process":
        return ProcessExecutor(device, workers, cell_timeout, retries)
    from bench.execution.ray_executor import RayExecutor  # Ray is an optional extra: import it only when asked for

    return RayExecutor(device, workers, cell_timeout, retries, address=ray_address)
