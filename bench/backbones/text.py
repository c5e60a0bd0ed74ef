"""Pieces shared by the text backbones (word vectors and transformers): the cosine-to-label-prompts zero-shot
head, the on-disk token cache, and the warning for texts that encode to nothing."""

from __future__ import annotations

import hashlib
import sys
from typing import Callable

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from bench.core.backbone import Inputs
from bench.core.errors import UserError
from bench.infra.atomic import atomic_path
from bench.infra.cache import cache_dir

__all__ = ["CosineToLabels", "cached_encoding", "report_empty"]


class CosineToLabels(nn.Module):
    """Class scores = cosine between a text's pooled vector and each label vector (zero for empty texts)."""

    def __init__(self, encoder: nn.Module, labels: torch.Tensor):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("labels", F.normalize(labels, dim=-1))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(*inputs), dim=-1) @ self.labels.T


_WARNED: set[tuple[str, int, int]] = set()


def report_empty(backbone: str, empty: int, total: int, why: str) -> None:
    """One warning line when some texts encode to nothing; a UserError when all of them do."""
    if empty and empty == total:
        raise UserError(f"backbone {backbone!r}: none of the {total} texts has {why.removeprefix('no ')} "
                        "(wrong language, casing or vectors file?)")
    if empty and (backbone, empty, total) not in _WARNED:
        _WARNED.add((backbone, empty, total))
        print(f"warning: {backbone}: {empty} of {total} texts have {why}; they encode as an empty text",
              file=sys.stderr)


def cached_encoding(key: str, texts: list[str], compute: Callable[[], Inputs]) -> Inputs:
    """Token tensors for ``texts`` under encoding ``key``, computed once and kept in ``<cache>/tokens``."""
    digest = hashlib.sha256(key.encode())
    for text in texts:
        digest.update(text.encode("utf-8", errors="replace") + b"\0")
    path = cache_dir() / "tokens" / f"{digest.hexdigest()[:24]}.safetensors"
    if path.is_file():
        try:
            stored = load_file(str(path))
            return tuple(stored[str(i)] for i in range(len(stored)))
        except Exception:  # a damaged cache file is recomputed, not trusted
            path.unlink(missing_ok=True)
    out = compute()
    with atomic_path(path) as tmp:
        save_file({str(i): t.contiguous() for i, t in enumerate(out)}, str(tmp))
    return out
