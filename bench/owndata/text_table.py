"""A table of labelled texts (CSV, TSV, JSON Lines, JSON records or Parquet) as a text task.

One file with a text column and a label column (options ``text`` / ``label``), split by its ``split`` column when it
has one (``train`` / ``test``; ``val``, ``valid``, ``validation`` and ``dev`` count as test: the runner cuts its own
validation set from train), else by a seeded stratified cut (``test_size``, ``seed``). Or two files, ``train:`` and
``test:``. Preparation follows the built-in text tasks: whitespace collapsed, empty texts and rows without a label
dropped (counted), exact duplicate texts kept once (counted: a text on both sides would inflate test scores).
"""

from __future__ import annotations

import functools
import gzip
import json
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench.infra.cache import sha256_file
from bench.core.errors import UserError
from bench.owndata.common import (VAL_AS_TEST, OwnTask, OwnTaskData, check_keys, cut_split, describe_cut, digest,
                                  emit_warnings, int_option, need_two_each, resolve_path, test_size_option)
from bench.core.task import Split, TaskMetadata
from bench.core.textdata import clean

KNOWN_FORMATS = "csv, json, jsonl, parquet, tsv"
OPTIONS = ("text", "label", "split", "format", "train", "test", "test_size", "seed")
FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
           ".parquet": "parquet", ".pq": "parquet"}
COMPRESSED = (".gz", ".bz2", ".xz", ".zip", ".zst")
NOTE = "note: "  # a key of the dropped-rows counter that is a remark, not a reason rows were dropped


def table_format(path: Path, given: str | None) -> str:
    """The format named by the option, else by the extension (a compression suffix such as .gz is looked past)."""
    if given is not None:
        if given not in set(FORMATS.values()):
            raise UserError(f"{path}: unknown format {given!r}; valid formats: {KNOWN_FORMATS}")
        return given
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in COMPRESSED:
        suffixes.pop()
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    raise UserError(f"{path}: cannot tell the table format from the extension; name it with format: "
                    f"({KNOWN_FORMATS})")


def read_table(path: Path, fmt: str, task: str, dropped: Counter | None = None) -> pd.DataFrame:
    """Read one table; every failure is one line naming the file.

    What can be read around is counted in ``dropped`` instead: a CSV/TSV that is not valid UTF-8 is read as
    Latin-1 (every byte is a character there: accented text from older spreadsheets stays readable), a JSON Lines
    row that is not a JSON record is dropped.
    """
    if not path.is_file():
        raise UserError(f"task {task}: table {path} does not exist (fix the path in the suite)")
    dropped = Counter() if dropped is None else dropped
    try:
        if fmt in ("csv", "tsv"):  # as strings: labels '01' and '1' stay distinct, no NaN for empty cells
            read = functools.partial(pd.read_csv, path, sep="," if fmt == "csv" else "\t", dtype=str,
                                     keep_default_na=False)
            try:
                return read(encoding="utf-8")
            except UnicodeDecodeError:
                frame = read(encoding="latin-1")
                dropped[f"{NOTE}{path.name} is not valid UTF-8: read as Latin-1"] = 0
                return frame
        if fmt == "jsonl":
            return _read_json_lines(path, dropped)
        if fmt == "json":
            return pd.read_json(path, dtype=False)
        return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError, ImportError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"task {task}: cannot read {path} as {fmt}: {first}") from None


def _read_json_lines(path: Path, dropped: Counter) -> pd.DataFrame:
    """JSON Lines, one record per line; a line that is not a JSON object is dropped and counted (with its number)."""
    if path.suffix.lower() in COMPRESSED and path.suffix.lower() != ".gz":  # pandas knows the other codecs
        return pd.read_json(path, lines=True, dtype=False)
    records, bad = [], []
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                bad.append(number)
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        dropped[f"malformed JSON line (lines {shown})"] = len(bad)
    if not records:
        raise ValueError("no JSON record in the file" if not bad else f"none of its {len(bad)} lines is a JSON record")
    return pd.DataFrame.from_records(records)


def _label_text(value: Any) -> str | None:
    """A label cell as a class name; None for a missing one (NaN, None, empty)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)  # a label column with gaps reads as float in pandas: 1.0 is class "1"
    text = str(value).strip()
    return text or None


def _class_order(labels: set[str]) -> tuple[str, ...]:
    """Sorted class names; numerically when every label is an integer (so '2' comes before '10')."""
    try:
        return tuple(sorted(labels, key=int))
    except ValueError:
        return tuple(sorted(labels))


@lru_cache(maxsize=4)
def _prepared(spec_items: tuple, fingerprint: str) -> dict[str, Any]:
    """The cleaned, split table (cached per spec and content: metadata and load both need it)."""
    return _prepare(dict(spec_items))


def _prepare(spec: dict[str, Any]) -> dict[str, Any]:
    task, text_col, label_col = spec["name"], spec["text"], spec["label"]
    if spec.get("train"):
        parts = [(Path(spec["train"]), "train"), (Path(spec["test"]), "test")]
    else:
        parts = [(Path(spec["path"]), None)]
    rows: list[tuple[str, str, str | None]] = []  # (text, label, side)
    dropped: Counter = Counter()
    how = describe_cut(spec["test_size"], spec["seed"])
    for path, side in parts:
        frame = read_table(path, table_format(path, spec.get("format")), task, dropped)
        for option, column in (("text", text_col), ("label", label_col)):
            if column not in frame.columns:
                raise UserError(f"task {task}: {path.name} has no column {column!r} (option {option}); its columns: "
                                f"{', '.join(map(str, frame.columns))}")
        split_col = spec.get("split")
        sides: list[str | None] = [side] * len(frame)
        if side is None and split_col and split_col in frame.columns:
            sides = _split_sides(frame[split_col], task, path, split_col)
            how = f"split column {split_col!r}"
        elif side is None and split_col and split_col != "split":
            raise UserError(f"task {task}: {path.name} has no split column {split_col!r}; its columns: "
                            f"{', '.join(map(str, frame.columns))}")
        elif side is not None:
            how = f"test file {Path(spec['test']).name}"
        for text, label, row_side in zip(frame[text_col].tolist(), frame[label_col].tolist(), sides):
            rows.append((clean(text) if isinstance(text, str) else "", _label_text(label), row_side))
    if rows and not any(text for text, _, _ in rows):
        raise UserError(f"task {task}: every text in column {text_col!r} is empty")
    kept, seen = [], set()
    for text, label, side in rows:
        reason = "empty text" if not text else "no label" if label is None else "duplicate text" if text in seen \
            else None
        if reason:
            dropped[reason] += 1
            continue
        seen.add(text)
        kept.append((text, label, side))
    return _split(kept, spec, how, dropped)


def _split_sides(column: pd.Series, task: str, path: Path, name: str) -> list[str]:
    values = [str(v).strip().lower() for v in column.tolist()]
    mapped = ["test" if v in VAL_AS_TEST else v for v in values]
    bad = sorted(set(mapped) - {"train", "test"})
    if bad:
        raise UserError(f"task {task}: split column {name!r} of {path.name} has values {bad[:5]}; use train or test "
                        f"({', '.join(VAL_AS_TEST)} count as test), or set split: null to cut a split instead")
    return mapped


def _split(kept: list[tuple[str, str, str | None]], spec: dict[str, Any], how: str, dropped: Counter):
    task = spec["name"]
    if any(side is not None for _, _, side in kept):
        train = [(t, c) for t, c, s in kept if s == "train"]
        test = [(t, c) for t, c, s in kept if s == "test"]
        for side, part in (("train", train), ("test", test)):
            if not part:
                raise UserError(f"task {task}: no usable {side} rows ({how})")
        classes = _class_order({c for _, c in train})
        unseen = sorted({c for _, c in test} - set(classes))
        if unseen:
            raise UserError(f"task {task}: test labels unseen in training: {', '.join(map(repr, unseen))}")
        index = {c: i for i, c in enumerate(classes)}
        train_y = np.array([index[c] for _, c in train], dtype=np.int64)
        need_two_each(train_y, classes, task, "label", "training rows")
        test_y = np.array([index[c] for _, c in test], dtype=np.int64)
        train_x, test_x = [t for t, _ in train], [t for t, _ in test]
    else:
        classes = _class_order({c for _, c, _ in kept})
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[c] for _, c, _ in kept], dtype=np.int64)
        if len(classes) >= 2:
            need_two_each(labels, classes, task, "label", "rows")
        train_i, test_i = cut_split(labels, spec["test_size"], spec["seed"]) if len(classes) >= 2 else \
            (np.arange(len(kept)), np.arange(0))
        train_x, test_x = [kept[i][0] for i in train_i], [kept[i][0] for i in test_i]
        train_y, test_y = labels[train_i], labels[test_i]
    warnings = [why[len(NOTE):] if why.startswith(NOTE) else f"dropped {n} row(s): {why}"
                for why, n in sorted(dropped.items())]
    return {"classes": classes, "train": (train_x, train_y), "test": (test_x, test_y), "how": how,
            "warnings": warnings}


class TextTableTask(OwnTask):
    """A text task read from a labelled table (see the module docstring)."""

    kind_name = "text-table"
    modality = "text"

    @classmethod
    def from_spec(cls, spec: dict[str, Any], base_dir: Path | None = None) -> TextTableTask:
        check_keys(spec, cls.kind_name, OPTIONS)
        name = spec["name"]
        files = {k: spec.get(k) for k in ("path", "train", "test")}
        if bool(files["train"]) != bool(files["test"]):
            raise UserError(f"task {name!r} (text-table): give both train: and test: files, or one path:")
        if bool(files["path"]) == bool(files["train"]):
            raise UserError(f"task {name!r} (text-table): give either path: (one table) or train: and test: files")
        for key in ("text", "label"):
            if not isinstance(spec.get(key, key), str):
                raise UserError(f"task {name!r}: option {key} must be a column name, got {spec[key]!r}")
        split = spec.get("split", "split")
        if split is not None and split is not False and not isinstance(split, str):
            raise UserError(f"task {name!r}: option split must be a column name or null, got {split!r}")
        out = {"name": name, "kind": cls.kind_name, "description": spec.get("description"),
               "text": spec.get("text", "text"), "label": spec.get("label", "label"), "split": split or None,
               "format": spec.get("format"), "test_size": test_size_option(spec),
               "seed": int_option(spec, "seed", 0, 0, 2**32 - 1)}
        for key, value in files.items():
            out[key] = str(resolve_path(value, f"task {name!r} option {key}", base_dir)) if value else None
        return cls(out)

    def _files(self) -> list[Path]:
        return [Path(self.spec[k]) for k in ("path", "train", "test") if self.spec.get(k)]

    def fingerprint(self) -> str:
        """Digest of the files' bytes (tables are small next to images) and the options."""
        contents = []
        for file in self._files():
            if not file.is_file():
                raise UserError(f"task {self.name}: table {file} does not exist (fix the path in the suite)")
            contents.append(sha256_file(file))
        options = {k: v for k, v in self.spec.items() if k not in ("name", "description")}
        return digest({"loader": self.loader_version, "options": options, "files": contents})

    def _data(self, fingerprint: str | None = None) -> dict[str, Any]:
        return _prepared(tuple(sorted(self.spec.items())), fingerprint or self.fingerprint())

    def _scan_metadata(self) -> TaskMetadata:
        data = self._data()
        classes = data["classes"]
        counts = Counter({classes[i]: int(n) for i, n in enumerate(np.bincount(data["train"][1],
                                                                                 minlength=len(classes)))})
        desc = (f"text table {self._files()[0].name}: {len(data['train'][0])} train / {len(data['test'][0])} test "
                f"texts, {len(classes)} classes")
        return self._make_metadata(classes, counts, desc)

    def load(self, path: Path | None = None) -> OwnTaskData:
        if path is not None:
            return type(self).from_spec({k: v for k, v in self.spec.items()
                                         if v is not None and k not in ("kind", "train", "test")}
                                        | {"path": str(path)}).load()
        key = self.fingerprint()
        data = self._data(key)
        self.metadata  # noqa: B018 - refuses fewer than two classes before any split is handed out
        self.warnings = list(data["warnings"])
        emit_warnings(self.name, self.warnings)
        (train_x, train_y), (test_x, test_y) = data["train"], data["test"]
        files = " + ".join(str(f) for f in self._files())
        source = (f"text-table:{files} ({len(train_x)} train + {len(test_x)} test texts, content {key[:12]}; "
                  f"test: {data['how']})")
        return OwnTaskData(Split(list(train_x), torch.from_numpy(train_y.copy())),
                           Split(list(test_x), torch.from_numpy(test_y.copy())), source, warnings=self.warnings)
