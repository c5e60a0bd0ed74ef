"""Cell claims: several runners share one results directory and compute each cell once.

Before a runner hands a cell to its executor it takes a lease on it: ``RESULTS/claims/<cell key>``, created with
``O_CREAT | O_EXCL`` (atomic on local file systems and on NFSv3+), holding the owner (host, pid, run id). The lease's
heartbeat is the file's modification time, refreshed by a background thread of the owner every
``timeout / 6`` seconds while it holds claims. Other runners skip claimed cells and come back to them after the rest.

A lease is **stale**, and may be taken over, when its heartbeat is older than ``timeout`` (the owner died, or its
machine did), or at once when its owner is a process of this host that no longer exists. Taking over happens under
an exclusive ``flock`` on ``claims/.steal.lock`` (held for milliseconds; the kernel drops it if its holder dies):
the stealer looks again, renames the stale file aside, checks it renamed the very file it judged (same inode; if
the owner released it and a third runner took the cell in that instant, the lease is put back), deletes it and
creates its own lease with ``O_EXCL``. Of two runners stealing one lease, the second finds a fresh lease and backs
off; an ordinary take racing the steal can only win through ``O_EXCL``, so one runner holds a cell at a time.

A lease is released (deleted) as soon as the cell's row is written, error rows included; a runner that stops
releases whatever it still holds. ``--force`` recomputes recorded rows, never a cell another live runner holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_TIMEOUT_S", "Claims", "claims_dir"]

DEFAULT_TIMEOUT_S = 180.0  # a lease nobody refreshed for this long belongs to a runner that died
HEARTBEATS_PER_TIMEOUT = 6  # refreshes per timeout: a busy or slow disk can miss several before a lease looks dead


def claims_dir(results_dir: str | os.PathLike) -> Path:
    return Path(results_dir) / "claims"


class Claims:
    """The leases this runner holds on one results directory; use as a context manager (starts the heartbeat)."""

    def __init__(self, results_dir: str | os.PathLike, timeout_s: float = DEFAULT_TIMEOUT_S, run_id: str | None = None):
        self.dir = claims_dir(results_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.timeout_s = float(timeout_s)
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "run": run_id or uuid.uuid4().hex[:12]}
        self.held: set[str] = set()
        self.took_over = 0  # stale leases this runner took over (the run summary mentions them)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------
    def __enter__(self) -> Claims:
        self._thread = threading.Thread(target=self._beat, name="transferbench-claims-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for key in list(self.held):
            self.release(key)

    def _beat(self) -> None:
        interval = self.timeout_s / HEARTBEATS_PER_TIMEOUT
        while not self._stop.wait(interval):
            with self._lock:
                held = list(self.held)
            for key in held:
                try:
                    os.utime(self._path(key))
                except FileNotFoundError:  # being taken over by mistake right now: the stealer puts it back
                    pass

    # --- taking and releasing -----------------------------------------------------------------------------
    def take(self, key: str) -> bool:
        """Take the lease on cell ``key``: True when this runner now holds it (already held: True too)."""
        if key in self.held:
            return True
        if self._create(key):
            return True
        if self._stale(self._path(key)) and self._take_over(key):
            self.took_over += 1
            return True
        return False

    def release(self, key: str) -> None:
        """Give the lease on ``key`` up (its row is written, or this runner stops)."""
        with self._lock:
            if key not in self.held:
                return
            self.held.discard(key)
        path = self._path(key)
        if self._owner_of(path) == self.owner:  # never delete a lease that was (wrongly) taken over since
            path.unlink(missing_ok=True)

    def holder(self, key: str) -> dict[str, Any] | None:
        """Who holds ``key`` (None: nobody)."""
        return self._owner_of(self._path(key))

    # --- internals ----------------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return self.dir / key

    def _create(self, key: str) -> bool:
        try:
            fd = os.open(self._path(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.owner | {"since": time.time()}, f)
        with self._lock:
            self.held.add(key)
        return True

    def _take_over(self, key: str) -> bool:
        path = self._path(key)
        with self._steal_lock():  # stealers take turns, so a lease one just created is never judged by another
            try:
                before = path.stat()
            except FileNotFoundError:
                return self._create(key)
            if not self._stale(path):
                return False
            aside = self.dir / f".{key}.stolen-{self.owner['run']}"
            try:
                os.rename(path, aside)
            except FileNotFoundError:  # its owner released it after all: an ordinary take
                return self._create(key)
            if os.stat(aside).st_ino != before.st_ino:  # released and taken afresh in between: give it back
                try:
                    os.link(aside, path)
                except FileExistsError:
                    pass
                aside.unlink(missing_ok=True)
                return False
            aside.unlink()
            return self._create(key)

    @contextlib.contextmanager
    def _steal_lock(self) -> Iterator[None]:
        """An exclusive ``flock`` on ``claims/.steal.lock``: the kernel drops it when its holder dies, so a runner
        killed while taking a lease over never blocks the others (NFS clients map it onto POSIX locks)."""
        fd = os.open(self.dir / ".steal.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _stale(self, path: Path) -> bool:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return False
        if age > self.timeout_s:
            return True
        owner = self._owner_of(path)
        if owner is None:  # being written right now (created, not yet filled) or damaged: judge by age alone
            return False
        return owner.get("host") == self.owner["host"] and not _alive(owner.get("pid"))

    @staticmethod
    def _owner_of(path: Path) -> dict[str, Any] | None:
        try:
            owner = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(owner, dict):
            return None
        return {k: owner.get(k) for k in ("host", "pid", "run")}


def _alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this host (a pid of another user counts as alive)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
