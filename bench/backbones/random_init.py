"""A backbone's architecture at a fixed random initialisation: the lower anchor of transferability estimates.

``RandomInit(backbone)`` behaves like ``backbone`` (same encoding, preprocessing and structure) but every model it
builds is ``backbone.create(..., pretrained=False)`` under a fixed torch seed, so its features are reproducible and
can share the on-disk feature cache under their own key. It is named ``<backbone>@random`` in results; it is not a
name the backbone resolvers understand (a suite cannot list it).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bench.core.backbone import Backbone, Inputs
from bench.core.task import Split, TaskMetadata

SUFFIX = "@random"


class RandomInit(Backbone):
    """``inner``'s architecture, randomly initialised with torch seed ``seed`` (no pretrained weights)."""

    def __init__(self, inner: Backbone, seed: int = 0):
        super().__init__(inner.name + SUFFIX)
        self.inner, self.seed = inner, seed
        self.modality, self.defaults = inner.modality, inner.defaults

    def describe(self) -> str:
        return f"{self.inner.name} at random initialisation (seed {self.seed})"

    # --- data: exactly the inner backbone's -------------------------------------------------------------------
    def encode(self, split: Split, params: dict[str, Any]) -> Inputs:
        return self.inner.encode(split, params)

    def transform(self, batch: Inputs, params: dict[str, Any]) -> Inputs:
        return self.inner.transform(batch, params)

    def encode_key(self, params: dict[str, Any]) -> str:
        return self.inner.encode_key(params)

    # --- models: always random, always the same random ----------------------------------------------------------
    def create(self, num_classes: int, pretrained: bool, params: dict[str, Any]) -> nn.Module:
        # Seeded here, not by the caller: the same weights whenever the features or the head are rebuilt.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self.inner.create(num_classes, pretrained=False, params=params)

    def head(self, model: nn.Module) -> nn.Module:
        return self.inner.head(model)

    def stages(self, model: nn.Module) -> list[list[str]]:
        return self.inner.stages(model)

    def features(self, model: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        return self.inner.features(model, *inputs)

    def feature_model(self, params: dict[str, Any]) -> nn.Module:
        return self.create(1, pretrained=False, params=params).eval()

    def zero_shot(self, meta: TaskMetadata, params: dict[str, Any]) -> nn.Module:
        raise NotImplementedError("a random-init anchor has no zero-shot classifier")

    def weights_source(self) -> str:
        return f"random init (torch seed {self.seed})"

    def weights_id(self) -> str:
        # Architecture and seed identify the weights; no weights file is involved. The torch version is part of it
        # because its initialisers (not their seeds) decide the numbers.
        arch = getattr(self.inner, "model_name", self.inner.name)
        return f"random-init:{type(self.inner).__name__}:{arch}:seed{self.seed}:torch{torch.__version__}"

    def prepare_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        return self.inner.prepare_model(model, device)
