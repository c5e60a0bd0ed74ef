"""Where transferbench keeps fetched assets, converted weights and cached features.

Resolution order: ``--cache-dir`` flag, then ``TRANSFERBENCH_CACHE``, then the user's cache folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import platformdirs

_override: Path | None = None


def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Set the cache folder for this process (the CLI's ``--cache-dir``)."""
    global _override
    _override = Path(path).expanduser() if path else None


def cache_dir() -> Path:
    """Return the cache folder, creating it if needed."""
    if _override is not None:
        root = _override
    elif os.environ.get("TRANSFERBENCH_CACHE"):
        root = Path(os.environ["TRANSFERBENCH_CACHE"]).expanduser()
    else:
        root = Path(platformdirs.user_cache_dir("transferbench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def override() -> Path | None:
    """The folder set by ``set_cache_dir`` in this process (None: from the environment or the default), so worker
    processes can be handed the same folder as a variable."""
    return _override
