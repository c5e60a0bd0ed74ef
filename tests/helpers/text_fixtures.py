"""Tiny generated text data, word vectors and a tiny random BERT for fast tests of the real text code paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.core.task import Split, Task, TaskData, TaskMetadata

POSITIVE = ("good", "great", "fine", "happy", "love", "superb")
NEGATIVE = ("bad", "awful", "poor", "sad", "hate", "dull")
FILLER = ("the", "movie", "film", "is", "was", "a", "plot", "actor", "story", "and", "it")
LABEL_WORDS = ("positive", "negative", "review")


def sentences(n: int, seed: int) -> tuple[list[str], torch.Tensor]:
    """Short sentences whose label is carried by one or two sentiment words among filler words."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    texts = []
    for label in y:
        words = list(rng.choice(FILLER, size=rng.integers(3, 8)))
        for _ in range(rng.integers(1, 3)):
            words.insert(int(rng.integers(0, len(words) + 1)), rng.choice(POSITIVE if label else NEGATIVE))
        texts.append(" ".join(words).capitalize() + ".")
    return texts, torch.from_numpy(y).long()


class TinySentiment(Task):
    metadata = TaskMetadata(
        name="tiny-sentiment", description="generated sentiment sentences, 2 classes (tests only)", modality="text",
        classes=("negative", "positive"), source="generated", license="CC0",
        label_prompts=("A negative review.", "A positive review."),
    )

    def load(self, path: Path | None = None) -> TaskData:
        tx, ty = sentences(300, seed=1)
        vx, vy = sentences(90, seed=2)
        return TaskData(Split(tx, ty), Split(vx, vy), "generated")


def vectors_table(dim: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Vectors where sentiment words (and the label words) point along ±axis 0, filler words elsewhere."""
    rng = np.random.default_rng(seed)
    table = {}
    for word in FILLER + ("review", ".", "a"):
        v = rng.normal(0, 1, dim)
        v[0] = 0.0
        table[word] = v
    for sign, words in ((1.0, POSITIVE + ("positive",)), (-1.0, NEGATIVE + ("negative",))):
        for word in words:
            v = rng.normal(0, 0.3, dim)
            v[0] = 3.0 * sign
            table[word] = v
    return table


def write_word2vec_text(path: Path, table: dict[str, np.ndarray], header: bool = True) -> Path:
    """word2vec text format (``count dim`` header) or, with ``header=False``, GloVe's format."""
    lines = [f"{len(table)} {len(next(iter(table.values())))}"] if header else []
    lines += [w + " " + " ".join(f"{x:.5f}" for x in v) for w, v in table.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_bert(folder: Path, layers: int = 2) -> Path:
    """A random 2-layer BERT (hidden 16) with a word-level vocabulary of the generated task, saved as a model
    folder: AutoTokenizer / AutoModel / AutoModelForSequenceClassification load it like any checkpoint."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + sorted(
        set(POSITIVE + NEGATIVE + FILLER + LABEL_WORDS))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    try:  # transformers 5 takes the vocabulary itself; 4.x only a vocab file
        tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    except TypeError:
        tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder
