"""What a backbone is to the rest of transferbench, whatever library it comes from.

A backbone turns raw split inputs into tensors (``encode``), preprocesses batches on the device (``transform``),
builds classifiers (``create``), and exposes the structure strategies need: the new head, the ordered stages for
partial freezing, pooled features, and a zero-shot scorer. Models take ``model(*transformed_batch)`` → logits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

from bench.core.task import Split, TaskMetadata

Inputs = tuple[torch.Tensor, ...]


class Backbone(ABC):
    modality: str = ""
    assets: tuple[str, ...] = ()  # offline assets (bench.infra.assets) that ``transferbench fetch`` gets for it
    # Parameter defaults that suit this kind of backbone, per strategy name ("*" for all), e.g. a transformer's
    # fine-tuning learning rate. Merged after the strategy's own defaults and before the suite's ``params``.
    defaults: dict[str, dict[str, Any]] = {}

    def __init__(self, name: str):
        self.name = name

    def describe(self) -> str:
        return self.name

    # --- data ---------------------------------------------------------------------------------------------
    @abstractmethod
    def encode(self, split: Split, params: dict[str, Any]) -> Inputs:
        """Raw split → tensors kept for the whole cell (vision: the uint8 images; text: token ids)."""

    def transform(self, batch: Inputs, params: dict[str, Any]) -> Inputs:
        """Per-batch preprocessing on the device (resize, normalise). Identity by default."""
        return batch

    def encode_key(self, params: dict[str, Any]) -> str:
        """What ``encode`` depends on besides the data (e.g. tokenizer and max length), for caching."""
        return self.name

    # --- models -------------------------------------------------------------------------------------------
    @abstractmethod
    def create(self, num_classes: int, pretrained: bool, params: dict[str, Any]) -> nn.Module:
        """A classifier with a freshly initialised head; ``pretrained=False`` gives the same architecture at random."""

    @abstractmethod
    def head(self, model: nn.Module) -> nn.Module:
        """The classification head of a model built by ``create``."""

    @abstractmethod
    def stages(self, model: nn.Module) -> list[list[str]]:
        """Submodule names of each feature stage, input to output (stem first), head excluded (partial freezing)."""

    @abstractmethod
    def features(self, model: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        """Pooled pre-logit features [B, D] of transformed inputs."""

    @abstractmethod
    def feature_model(self, params: dict[str, Any]) -> nn.Module:
        """The pretrained network used (frozen) by feature extraction."""

    @abstractmethod
    def zero_shot(self, meta: TaskMetadata, params: dict[str, Any]) -> nn.Module:
        """A module scoring the task's classes without training on its labels: ``m(*inputs)`` → [B, K]."""

    @abstractmethod
    def weights_source(self) -> str:
        """Where the pretrained weights come from (recorded in results rows)."""

    def missing_weights(self) -> str | None:
        """Why the pretrained weights cannot be had now (None: they can), e.g. offline with no local copy.

        Cheap by contract: no model is built and nothing is downloaded or converted; a run asks it once per backbone
        before its first cell (``bench.plan.preflight``). Backbones whose weights come with their offline assets
        (fetched from a package registry) answer None.
        """
        return None

    def weights_id(self) -> str:
        """Identifies architecture + pretrained weights (feature cache key); not the spelling of the name."""
        return self.weights_source()

    def prepare_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        """Move a model to the device (vision backbones also switch to channels_last on CUDA)."""
        return model.to(device)
