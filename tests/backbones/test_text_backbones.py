"""Text backbones: vectors files in every format, tokenisation, lower-casing and OOV rules, the transformer path."""

from __future__ import annotations

import socket
import uuid

import numpy as np
import pytest
import torch

from bench.backbones import resolve_backbone
from bench.backbones.text import cached_encoding
from bench.backbones.wordvec import PAD, WordVecBackbone, label_words, sniff_format, tokenize
from bench.core.errors import UserError
from bench.core.task import Split
from tests.helpers.text_fixtures import TinySentiment, tiny_bert, vectors_table, write_word2vec_text

P = {"max_length": 8}


@pytest.fixture()
def vec_path(tmp_path):
    return write_word2vec_text(tmp_path / "tiny.vec", vectors_table())


def split(*texts: str) -> Split:
    return Split(list(texts), torch.zeros(len(texts), dtype=torch.long))


def test_tokenizer_splits_clitics_and_punctuation():
    assert tokenize("Don't stop, it's GREAT!", lowercase=True) == ["do", "n't", "stop", ",", "it", "'s", "great", "!"]
    assert tokenize("Isn\u2019t 12.5 term-end.", lowercase=False) == ["Is", "n't", "12.5", "term-end", "."]


def test_every_vectors_format_loads_as_the_same_keyed_vectors(tmp_path):
    from gensim.models import KeyedVectors

    table = vectors_table()
    text = write_word2vec_text(tmp_path / "w2v.txt", table)
    glove = write_word2vec_text(tmp_path / "glove.txt", table, header=False)
    kv = KeyedVectors.load_word2vec_format(str(text))
    binary = tmp_path / "w2v.bin"
    kv.save_word2vec_format(str(binary), binary=True)
    native = tmp_path / "vectors.kv"
    kv.save(str(native))
    expected = {"w2v.txt": "word2vec-text", "glove.txt": "glove-text", "w2v.bin": "word2vec-bin", "vectors.kv": "kv"}
    for path in (text, glove, binary, native):
        assert sniff_format(path) == expected[path.name]
        backbone = resolve_backbone(str(path))
        assert isinstance(backbone, WordVecBackbone)
        assert np.allclose(backbone.kv["good"], table["good"], atol=1e-4)
        assert len(backbone.kv) == len(table)


@pytest.mark.parametrize("content", [b"col_a,col_b\n1,2\n", b"\x00\x01\x02garbage" * 10, b"word notanumber x\n"])
def test_a_file_in_a_wrong_format_is_one_clear_error(tmp_path, content):
    bad = tmp_path / "vectors.txt"
    bad.write_bytes(content)
    with pytest.raises(UserError, match="not a word-vector file"):
        resolve_backbone(str(bad))


def test_unknown_backbone_name_is_one_clear_error():
    with pytest.raises(UserError, match="unknown backbone"):
        resolve_backbone("glove-6b-51d")


def test_uncased_vectors_lowercase_and_cased_vectors_fall_back_to_lowercase(tmp_path, vec_path):
    uncased = resolve_backbone(str(vec_path))
    assert uncased.lowercase
    table = vectors_table()
    table["Film"] = table.pop("film")  # one capitalised word among the frequent ones: the vocabulary is cased
    cased = resolve_backbone(str(write_word2vec_text(tmp_path / "cased.vec", table)))
    assert not cased.lowercase
    assert cased.word_ids("Film") == [cased.vocab["Film"]]
    assert cased.word_ids("film") == []  # "film" is not in the cased vocabulary and has no lower-case form to try
    assert cased.word_ids("GOOD") == [cased.vocab["good"]]  # as written first, then lower-cased
    assert uncased.word_ids("GOOD Film") == [uncased.vocab["good"], uncased.vocab["film"]]


def test_oov_words_are_dropped_and_max_length_counts_known_words(vec_path):
    backbone = resolve_backbone(str(vec_path))
    (ids,) = backbone.encode(split("good zzz qqq movie", "a " * 20 + "good"), P)
    assert ids.shape == (2, P["max_length"]) and ids.dtype == torch.long
    assert ids[0].tolist()[:3] == [backbone.vocab["good"], backbone.vocab["movie"], PAD]
    assert (ids[1] != PAD).all()  # 21 known words truncated to max_length


def test_texts_without_known_words_warn_and_an_all_unknown_split_fails(vec_path, capsys):
    backbone = resolve_backbone(str(vec_path))
    (ids,) = backbone.encode(split("good movie", "", "zzz qqq"), P)
    assert (ids[1] == PAD).all() and (ids[2] == PAD).all()
    assert "2 of 3 texts have no in-vocabulary word" in capsys.readouterr().err
    model = backbone.create(2, pretrained=True, params=P)
    assert torch.equal(model.pooled(ids)[1], torch.zeros(2 * backbone.kv.vector_size))  # empty → zero vector
    with pytest.raises(UserError, match="none of the 2 texts"):
        backbone.encode(split("zzz", "Qqq xx"), P)


def test_pretrained_and_random_tables(vec_path):
    backbone = resolve_backbone(str(vec_path))
    pre = backbone.create(2, pretrained=True, params=P)
    rnd = backbone.create(2, pretrained=False, params=P)
    good = torch.tensor([[backbone.vocab["good"]]])
    assert torch.allclose(pre.embed(good)[0, 0], torch.tensor(backbone.kv["good"]))
    assert not torch.allclose(rnd.embed(good)[0, 0], pre.embed(good)[0, 0])
    assert torch.equal(rnd.embed(torch.tensor([[PAD]]))[0, 0], torch.zeros(backbone.kv.vector_size))


def test_label_words_keep_what_tells_the_classes_apart():
    assert label_words(TinySentiment.metadata) == [["negative"], ["positive"]]


def test_token_encodings_are_cached_on_disk():
    calls = []

    def compute():
        calls.append(1)
        return (torch.arange(6).view(2, 3),)

    key = f"test-key-{uuid.uuid4().hex}"  # fresh: TRANSFERBENCH_TEST_CACHE may hold an entry from an earlier session
    first = cached_encoding(key, ["a", "b"], compute)
    second = cached_encoding(key, ["a", "b"], compute)
    cached_encoding(key, ["a", "c"], compute)  # other texts: another entry
    assert len(calls) == 2 and torch.equal(first[0], second[0])


def test_transformer_folder_encodes_trims_and_builds_models(tmp_path):
    folder = tiny_bert(tmp_path / "bert")
    backbone = resolve_backbone(str(folder))
    ids, mask = backbone.encode(split("good movie", "the plot was awful and dull"), {"max_length": 16})
    assert ids.shape == mask.shape == (2, 16)
    tids, tmask = backbone.transform((ids, mask), {})
    assert tids.shape[1] == int(mask.sum(1).max()) < 16  # CPU batches are cut to their longest text
    model = backbone.create(3, pretrained=True, params={})
    assert model(tids, tmask).shape == (2, 3)
    scratch = backbone.create(3, pretrained=False, params={})
    word = "base.embeddings.word_embeddings.weight"
    assert not torch.equal(dict(model.named_parameters())[word], dict(scratch.named_parameters())[word])
    names = {n for n, _ in model.named_modules()}
    assert all(n in names for stage in backbone.stages(model) for n in stage)


def test_a_folder_without_config_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="config.json"):
        resolve_backbone(str(tmp_path))


# --- real assets (fetched from the package registries) -------------------------------------------------------
@pytest.mark.assets
def test_packaged_glove_analogy_king_man_woman_is_queen():
    kv = resolve_backbone("glove-6b-50d").kv
    assert len(kv) == 400_000 and kv.vector_size == 50
    (best, score), *_ = kv.most_similar(positive=["king", "woman"], negative=["man"], topn=1)
    assert best == "queen" and score > 0.8


@pytest.mark.assets
def test_minilm_loads_with_the_network_disabled(monkeypatch):
    from bench.backbones.text_embed import minilm_path

    minilm_path()  # fetch the package first (registry access is allowed); then cut the network

    def no_network(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolve_backbone.cache_clear()
    backbone = resolve_backbone("minilm-l6")
    model = backbone.create(2, pretrained=True, params={})
    assert model.base.config.num_hidden_layers == 6 and model.base.config.hidden_size == 384
    ids, mask = backbone.encode(split("A gripping, beautifully acted film."), {"max_length": 16})
    assert model(ids, mask).shape == (1, 2)


def test_zero_shot_label_vectors_ignore_function_words(tmp_path):
    """A prompt full of "a"/"the" must not pull every text towards its class (seen on SpamAssassin with GloVe)."""
    from bench.core.task import TaskMetadata

    table = vectors_table()
    # "the" and "a" are the most frequent words; 120 others come before the table's own words (ranks beyond 100)
    words = ["the", "a"] + [f"filler{i}" for i in range(120)] + [w for w in table if w not in ("the", "a")]
    rng = np.random.default_rng(0)
    backbone = resolve_backbone(str(write_word2vec_text(tmp_path / "big.vec",
                                                        {w: table.get(w, rng.normal(0, 1, 8)) for w in words})))
    meta = TaskMetadata(name="t", description="", modality="text", classes=("neg", "pos"), source="", license="",
                        label_prompts=("negative", "a the a positive"))
    scorer = backbone.zero_shot(meta, P)
    expected = torch.nn.functional.normalize(torch.tensor(table["positive"], dtype=torch.float32), dim=0)
    assert torch.allclose(scorer.labels[1], expected, atol=1e-4)
