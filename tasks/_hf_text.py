"""Text tasks that come from the Hugging Face hub (SST-2, IMDB, AG News): one loader, three small plugin files.

Resolution order (docs/ARCHITECTURE.md, "Data"): explicit path (``TRANSFERBENCH_DATA_<TASK>``) → local cache →
canonical download.
Local data is read with pandas from the hub's on-disk layout, so it needs no ``datasets`` package:
``<folder>/**/<split>-*.parquet`` (how the hub stores datasets), or ``<split>.jsonl`` / ``<split>.json`` /
``<split>.csv`` files. A ``save_to_disk`` folder (``dataset_dict.json``) is read through ``datasets`` itself.
The download uses ``datasets.load_dataset`` (an optional extra, imported lazily) and stores the splits as parquet
files in the cache, so the next run reads them offline.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.infra.cache import cache_dir
from bench.core.errors import UserError
from bench.core.task import Split, Task, TaskData
from tasks._images import data_path_from_env
from bench.core.textdata import clean, label_ids

_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")


def _read(file: Path) -> pd.DataFrame:
    if file.suffix == ".parquet":
        return pd.read_parquet(file)
    if file.suffix in (".jsonl", ".json"):
        try:
            return pd.read_json(file, lines=True)
        except ValueError:  # a plain JSON array of records
            return pd.read_json(file)
    return pd.read_csv(file)


def split_files(folder: Path, split: str) -> list[Path]:
    """Files holding ``split`` in the hub layout: ``split.ext``, ``split-00000-of-00001.ext`` (any depth)."""
    hits = [p for p in folder.rglob("*") if p.is_file() and p.suffix in _SUFFIXES
            and (p.stem == split or p.stem.startswith(f"{split}-"))]
    return sorted(hits)


def read_split(folder: Path, split: str) -> pd.DataFrame | None:
    files = split_files(folder, split)
    return pd.concat([_read(f) for f in files], ignore_index=True) if files else None


class HFTextTask(Task):
    """A hub text-classification dataset. Subclasses set metadata and the fields below."""

    hub_id: str = ""  # e.g. "stanfordnlp/imdb"
    text_field: str = "text"
    label_field: str = "label"
    train_split: str = "train"
    test_split: str = "test"  # SST-2's test labels are hidden: it uses "validation"

    def load(self, path: Path | None = None) -> TaskData:
        path = path or data_path_from_env(self.name)
        if path is not None:
            if not path.exists():
                raise UserError(f"task {self.name}: {path} does not exist")
            return self._from_folder(path, f"path:{path}")
        cached = cache_dir() / "hf-datasets" / self.name
        if (cached / "done").is_file():
            return self._from_folder(cached, f"cache:hf {self.hub_id}")
        self._download(cached)
        return self._from_folder(cached, f"download:hf {self.hub_id}")

    def _from_folder(self, folder: Path, source: str) -> TaskData:
        if (folder / "dataset_dict.json").is_file():
            frames = self._load_from_disk(folder)
        else:
            frames = {s: read_split(folder, s) for s in (self.train_split, self.test_split)}
        missing = [s for s, f in frames.items() if f is None]
        if missing:
            raise UserError(f"task {self.name}: {folder} has no {missing[0]!r} split (expected files like "
                            f"{missing[0]}-00000-of-00001.parquet, {missing[0]}.jsonl or {missing[0]}.csv)")
        train, test = (self._split(frames[s], s) for s in (self.train_split, self.test_split))
        return TaskData(train, test, source)

    def _split(self, frame: pd.DataFrame, name: str) -> Split:
        for field in (self.text_field, self.label_field):
            if field not in frame.columns:
                raise UserError(f"task {self.name}: split {name!r} has no {field!r} column ({list(frame.columns)})")
        texts = [clean(t) for t in frame[self.text_field].astype(str)]
        y = label_ids(frame[self.label_field].tolist(), self.metadata.classes, self.name)
        keep = [i for i, t in enumerate(texts) if t]  # an empty text carries no evidence for either class
        return Split([texts[i] for i in keep], y[keep])

    def _datasets(self):
        try:
            import datasets
        except ImportError:
            raise UserError(f"task {self.name} needs the Hugging Face `datasets` package to download "
                            f"{self.hub_id}: pip install datasets (or set TRANSFERBENCH_DATA_"
                            f"{self.name.upper().replace('-', '_')} to a folder with its parquet files)") from None
        return datasets

    def _load_from_disk(self, folder: Path) -> dict[str, pd.DataFrame | None]:
        dsd = self._datasets().load_from_disk(str(folder))
        return {s: dsd[s].to_pandas() if s in dsd else None for s in (self.train_split, self.test_split)}

    def _download(self, target: Path) -> None:
        datasets = self._datasets()
        try:
            dsd = datasets.load_dataset(self.hub_id)
        except Exception as err:  # offline, hub errors: one line either way
            env = f"TRANSFERBENCH_DATA_{self.name.upper().replace('-', '_')}"
            raise UserError(f"task {self.name}: cannot download {self.hub_id} ({type(err).__name__}); go online, "
                            f"or set {env} to a local copy") from None
        target.mkdir(parents=True, exist_ok=True)
        for split in (self.train_split, self.test_split):
            dsd[split].to_pandas()[[self.text_field, self.label_field]].to_parquet(target / f"{split}.parquet")
        (target / "done").write_text(self.hub_id)
