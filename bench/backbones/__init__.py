"""Backbones by name: any timm model (vision), word vectors through gensim, transformers (text)."""

from __future__ import annotations

from functools import lru_cache

from bench.core.backbone import Backbone
from bench.core.errors import UserError


def _resolvers():
    """Each resolver returns a Backbone for names it recognises, else None. Text resolvers come first: their names
    (glove-6b-50d, minilm-l6, paths, hub ids) never collide with timm's model names. Imported on first use: the
    backbone modules pull in timm, gensim and transformers."""
    from bench.backbones import pretrained_source, transformer, vision, wordvec

    # Source-pretrained backbones first: a suite may name one like a timm model (``resnet18``).
    return (pretrained_source.resolve, wordvec.resolve, transformer.resolve, vision.resolve)


@lru_cache(maxsize=None)
def resolve_backbone(name: str) -> Backbone:
    """Return the backbone called ``name`` or raise UserError saying which names are understood."""
    for resolve in _resolvers():
        backbone = resolve(name)
        if backbone is not None:
            return backbone
    raise UserError(f"unknown backbone {name!r}: not a timm model name (see `transferbench list backbones`), "
                    "not a known text backbone (glove-6b-50d, word2vec-brown, minilm-l6), "
                    "and not an existing vectors file or model folder")


__all__ = ["Backbone", "resolve_backbone"]
