"""Is the model hub reachable? Asked once per process, in at most a second or two.

Without a network the hub clients retry each request several times with back-off (a minute of "Retrying in 8s"
lines for one missing weights file). Asking first lets a backbone switch the client to offline mode, so files
already in the local hub cache still load and a missing one fails at once with transferbench's own message.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from functools import lru_cache

HUB_HOST = "huggingface.co"


@lru_cache(maxsize=4)
def reachable(host: str = HUB_HOST, port: int = 443, timeout_s: float = 1.5) -> bool:
    """True when a TCP connection to ``host`` opens within ``timeout_s`` (False when offline mode is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def in_hub_cache(repo_id: str | None, files: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin",
                                                                  "open_clip_pytorch_model.bin")) -> bool:
    """Whether the local Hugging Face hub cache already holds weights of ``repo_id`` (no network access)."""
    if not repo_id:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return any(isinstance(try_to_load_from_cache(repo_id, name), str) for name in files)


@contextlib.contextmanager
def hub_offline_unless_reachable() -> Iterator[None]:
    """Run the block with the Hugging Face hub client in offline mode when the hub cannot be reached."""
    if reachable():
        yield
        return
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

        saved = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = True  # read at import time by huggingface_hub: set the live value too
    except (ImportError, AttributeError):
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            constants.HF_HUB_OFFLINE = saved
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before
