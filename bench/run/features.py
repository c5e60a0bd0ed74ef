"""The on-disk feature cache: pooled features of a frozen pretrained backbone, computed once per sample.

Cached per backbone weights × encoding × task data × official split, on disk (float16 safetensors holding the
sample indices computed so far, published atomically) and in memory. Only samples a cell needs are computed, once:
later seeds and fractions reuse them and add what is missing. A damaged file is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bench.core.backbone import Backbone
from bench.infra.atomic import atomic_path
from bench.infra.cache import cache_dir
from bench.core.tensordata import TensorData
from bench.run.train import predict

# In-memory copies between cells of one process: cache key -> (sorted sample indices, float16 features).
_FEATURES: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
# Encoded official splits, kept between cells of one process (same task, data and backbone encoding).
_ENCODED: dict[str, TensorData] = {}


def encoded_split(task: Any, data: Any, backbone: Backbone, params: dict[str, Any], which: str) -> TensorData:
    """A task's whole official ``train`` or ``test`` split encoded by ``backbone`` (on the CPU), kept in memory
    between cells of one process; the target task of a cell and a strategy's source task share this cache."""
    split = data.train if which == "train" else data.test
    key = f"{task.name}|{task.version}|{data.source}|{which}|{backbone.encode_key(params)}"
    if key not in _ENCODED:
        if len(_ENCODED) >= 4:
            _ENCODED.clear()
        _ENCODED[key] = TensorData(backbone.encode(split, params), split.y.long())
    return _ENCODED[key]


def split_features(backbone: Backbone, params: dict[str, Any], task: Any, data: Any, official: str,
                   wanted: np.ndarray, chosen: np.ndarray, make_model: Callable[[], nn.Module],
                   device: torch.device) -> torch.Tensor:
    """Pooled features (float32, on the CPU) of the samples ``chosen`` of the official ``train``/``test`` split.

    Samples of ``wanted`` (a superset of ``chosen``: what the cell may ask for) that the cache lacks are computed
    on ``device`` now, through a model from ``make_model``, and added to the cache."""
    ident = {"weights": backbone.weights_id(), "encoding": backbone.encode_key(params),
             "image_size": params.get("image_size"), "task": task.name, "task_version": task.version,
             "data": data.source, "split": official}
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
    path = cache_dir() / "features" / f"{task.name}-{official}-{key}.safetensors"
    index, feats = _FEATURES.get(key) or _load_features(path)
    missing = np.setdiff1d(wanted, index)
    if len(missing):
        encoded = encoded_split(task, data, backbone, params, official).take(missing)
        new = _compute(backbone, params, encoded, make_model, device).half()
        on_disk = _load_features(path)  # another worker may have added samples meanwhile: keep them too
        index, feats = _merge((index, feats), on_disk, (torch.from_numpy(missing), new))
        with atomic_path(path) as tmp:
            save_file({"index": index.contiguous(), "features": feats.contiguous()}, str(tmp))
    _FEATURES[key] = (index, feats)
    return feats[torch.from_numpy(np.searchsorted(index.numpy(), chosen))].float()


@torch.no_grad()
def _compute(backbone: Backbone, params: dict[str, Any], encoded: TensorData, make_model: Callable[[], nn.Module],
             device: torch.device) -> torch.Tensor:
    model = backbone.prepare_model(make_model(), device).eval()
    feature_net = _FeatureNet(backbone, model)

    def transform(batch):
        return backbone.transform(batch, params)

    return predict(feature_net, encoded.to(device), transform, int(params["eval_batch_size"]),
                   str(params.get("precision", "auto"))).cpu()


def _load_features(path) -> tuple[torch.Tensor, torch.Tensor]:
    """(sorted sample indices, float16 features) from the cache; empty when absent or damaged."""
    empty = (torch.empty(0, dtype=torch.long), torch.empty(0, 0, dtype=torch.float16))
    if not path.is_file():
        return empty
    try:
        stored = load_file(str(path))
        return stored["index"], stored["features"]
    except Exception as err:  # a truncated or damaged cache file is recomputed, not trusted
        print(f"warning: damaged feature cache {path.name} ({type(err).__name__}); recomputing it", file=sys.stderr)
        path.unlink(missing_ok=True)
        return empty


def _merge(*parts: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [p for p in parts if len(p[0])]
    index = torch.cat([p[0] for p in parts])
    feats = torch.cat([p[1] for p in parts])
    index, first = np.unique(index.numpy(), return_index=True)
    return torch.from_numpy(index), feats[torch.from_numpy(first)]


class _FeatureNet(nn.Module):
    def __init__(self, backbone: Backbone, model: nn.Module):
        super().__init__()
        self.backbone, self.model = backbone, model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.backbone.features(self.model, *inputs)
