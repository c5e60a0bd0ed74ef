"""Tokenisation: ``Backbone.encode`` of a text split, for word vectors (gensim vocabulary + the PTB-like regex) and
for a transformers tokenizer (a tiny random BERT's fast WordPiece tokenizer, the class MiniLM uses).

``encode`` keeps token tensors in ``<cache>/tokens``: "cold" times the real work a cell pays once (tokenise, pad,
write the cache file), "warm" what every later cell pays (hash the texts, read the file).
"""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("bench.backbones.wordvec", reason="word-vector backbone (bench/backbones/wordvec.py) not there")
pytest.importorskip("bench.backbones.transformer", reason="transformer backbone (bench/backbones/transformer.py) "
                    "not there")
text_fixtures = pytest.importorskip("tests.helpers.text_fixtures",
                                    reason="text test fixtures (tests/helpers/text_fixtures.py) not there")

from bench.infra import cache  # noqa: E402 - after the skips above
from bench.backbones import resolve_backbone  # noqa: E402
from bench.core.task import Split  # noqa: E402
from tests.benchmarks import mean_seconds  # noqa: E402

pytestmark = pytest.mark.benchmark(group="tokenisation")

TEXTS = 5000
PARAMS = {"max_length": 32}


@pytest.fixture(scope="module")
def split() -> Split:
    texts, y = text_fixtures.sentences(TEXTS, seed=0)
    return Split(texts, y)


@pytest.fixture(scope="module")
def text_backbones(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("text-backbones")
    return {"word-vectors": str(text_fixtures.write_word2vec_text(root / "tiny.vec", text_fixtures.vectors_table())),
            "transformer": str(text_fixtures.tiny_bert(root / "tiny-bert"))}


@pytest.fixture()
def token_cache(monkeypatch, tmp_path):
    """A cache folder of this test's own, so clearing its token files never touches a shared cache."""
    monkeypatch.setattr(cache, "_override", tmp_path / "cache")
    return tmp_path / "cache" / "tokens"


@pytest.mark.parametrize("kind", ["word-vectors", "transformer"])
def test_tokenise_cold(benchmark, kind, text_backbones, split, token_cache):
    backbone = resolve_backbone(text_backbones[kind])
    backbone.encode(Split(split.x[:10], split.y[:10]), PARAMS)  # load the vectors / tokenizer outside the timing
    inputs = benchmark.pedantic(backbone.encode, args=(split, PARAMS), rounds=3,
                                setup=lambda: shutil.rmtree(token_cache, ignore_errors=True))
    _record(benchmark, kind, inputs)


@pytest.mark.parametrize("kind", ["word-vectors", "transformer"])
def test_tokenise_warm(benchmark, kind, text_backbones, split, token_cache):
    backbone = resolve_backbone(text_backbones[kind])
    backbone.encode(split, PARAMS)  # fills the cache
    inputs = benchmark(backbone.encode, split, PARAMS)  # milliseconds: let pytest-benchmark choose the rounds
    _record(benchmark, kind, inputs)


def _record(benchmark, kind: str, inputs) -> None:
    ids = inputs[0]
    assert ids.shape == (TEXTS, PARAMS["max_length"])
    seconds = mean_seconds(benchmark)
    benchmark.extra_info.update({
        "backbone": kind, "texts": TEXTS, "max_length": PARAMS["max_length"],
        "texts_per_s": round(TEXTS / seconds, 1) if seconds else None,
    })
