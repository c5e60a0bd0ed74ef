"""What a task is: metadata, and a loader returning the official splits as tensors or texts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import torch

MODALITIES = ("vision", "text")
METRICS = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class TaskMetadata:
    """Facts about a task, validated once (as MTEB's ``TaskMetadata``).

    Attributes:
        name: registry name, e.g. ``fashion-mnist``.
        description: one line for ``transferbench list``.
        modality: "vision" or "text"; decides which backbones pair with the task.
        classes: class names in label order; zero-shot strategies read them.
        main_metric: the metric that drives model selection ("macro_f1" for unbalanced tasks).
        source: where the data comes from (paper / URL).
        license: the data's license.
        label_prompts: text zero-shot prompts, one per class (e.g. "A positive movie review.").
        imagenet_map: optional hand mapping {class name: ImageNet class indices} for vision zero-shot.
    """

    name: str
    description: str
    modality: str
    classes: tuple[str, ...]
    source: str
    license: str
    main_metric: str = "accuracy"
    label_prompts: tuple[str, ...] | None = None
    imagenet_map: dict[str, tuple[int, ...]] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"task {self.name}: modality {self.modality!r} not in {MODALITIES}")
        if self.main_metric not in METRICS:
            raise ValueError(f"task {self.name}: main_metric {self.main_metric!r} not in {METRICS}")
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"task {self.name}: needs at least two distinct class names")
        if self.label_prompts is not None and len(self.label_prompts) != len(self.classes):
            raise ValueError(f"task {self.name}: one label prompt per class is required")
        if self.imagenet_map is not None and set(self.imagenet_map) - set(self.classes):
            raise ValueError(f"task {self.name}: imagenet_map names classes the task does not have")

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class Split:
    """One official split. Vision: ``x`` is a uint8 tensor [N, C, H, W]; text: a list of strings."""

    x: torch.Tensor | list[str]
    y: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class TaskData:
    """The official splits and where they were read from (recorded in every results row)."""

    train: Split
    test: Split
    source: str  # e.g. "cache:dataset-fashion-mnist 0.0~git20200523 (debian)" or "download:torchvision"


class Task(ABC):
    """A task plugin. Subclasses set ``metadata`` and implement ``load``."""

    kind = "task"
    version = "1"  # bump when the data or its preparation changes: it is part of every cell key
    assets: tuple[str, ...] = ()  # offline assets (bench.infra.assets) that ``transferbench fetch`` gets for this task
    metadata: TaskMetadata

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.metadata.name

    @abstractmethod
    def load(self, path: Path | None = None) -> TaskData:
        """Return the official splits. ``path`` is an explicit data location given by the user, if any.

        Resolution order (docs/ARCHITECTURE.md, "Data"): explicit path → local cache → registry package →
        canonical download.
        Missing data raises ``bench.core.errors.UserError`` with the command that fixes it.
        """

    def check_labels(self, data: TaskData) -> TaskData:
        """Refuse labels outside the declared classes: a silent zero-accuracy row is worse than an error."""
        for split_name, split in (("train", data.train), ("test", data.test)):
            if len(split) and (int(split.y.min()) < 0 or int(split.y.max()) >= self.metadata.num_classes):
                raise ValueError(f"task {self.metadata.name}: {split_name} labels outside "
                                 f"0..{self.metadata.num_classes - 1}")
        return data
