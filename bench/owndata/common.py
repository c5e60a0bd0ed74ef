"""What the user-data tasks share: option checking, the task base class, seeded splits, warnings, the metric rule.

A user-data task is built from one suite entry (``{name: ..., kind: ..., path: ..., <options>}``). Unlike the
built-in tasks its data can change between runs, so its ``version`` carries a fingerprint of the data and of the
options that shape it: a changed folder or file gives new cell keys, and ``data.source`` (part of the feature
cache key) carries the same fingerprint.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import sys
from abc import abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.errors import UserError
from bench.core.splits import stratified_take
from bench.core.task import Task, TaskData, TaskMetadata

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
COMMON_KEYS = ("name", "kind", "path", "description")
IMBALANCE = 1.5  # largest / smallest class above this → macro-F1 drives model selection
VAL_AS_TEST = ("val", "valid", "validation", "dev")  # split names read as the test split


@dataclass
class OwnTaskData(TaskData):
    """``TaskData`` plus what the report must show about user data.

    Attributes:
        warnings: one line per thing skipped, dropped or converted while reading the data (never silent).
        backing: the memory-mapped cache array the image tensors are views of (``None`` for text).
    """

    warnings: list[str] = field(default_factory=list)
    backing: np.ndarray | None = None


def check_keys(spec: dict[str, Any], kind: str, own: tuple[str, ...]) -> None:
    """Refuse keys a kind does not know, naming the key, a close match and the valid ones."""
    valid = COMMON_KEYS + own
    for key in spec:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"task {spec.get('name')!r} ({kind}): unknown option {key!r}{hint}; "
                            f"valid options: {', '.join(valid)}")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not SLUG.match(name):
        raise UserError(f"task name {name!r} is not a safe name: use 1-64 lower-case letters, digits, '-' or '_', "
                        "starting with a letter or digit (e.g. my-photos)")
    return name


def resolve_path(value: Any, what: str, base_dir: Path | None) -> Path:
    """``~`` expanded; a relative path is taken from ``base_dir`` (the suite file's folder) or the working folder."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise UserError(f"{what}: needs a path (a string), got {value!r}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path.resolve()


def int_option(spec: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError(f"task {spec.get('name')!r}: option {key} must be an integer in {low}..{high}, got {value!r}")
    return value


def test_size_option(spec: dict[str, Any]) -> float | int:
    """A share of the data in (0, 1), or a count of test samples (an integer >= 1)."""
    value = spec.get("test_size", 0.2)
    ok = (isinstance(value, float) and 0.0 < value < 1.0) or (isinstance(value, int) and not isinstance(value, bool)
                                                                and value >= 1)
    if not ok:
        raise UserError(f"task {spec.get('name')!r}: option test_size must be a share in (0, 1) or a count >= 1, "
                        f"got {value!r}")
    return value


def main_metric(counts: Counter) -> str:
    """'macro_f1' when the classes are unbalanced (largest / smallest > 1.5), else 'accuracy'."""
    sizes = [n for n in counts.values() if n > 0]
    return "macro_f1" if sizes and max(sizes) / min(sizes) > IMBALANCE else "accuracy"


def need_two_each(labels: np.ndarray, classes: tuple[str, ...], task: str, what: str, why: str) -> None:
    """Every class needs two samples where a stratified split is cut (one each side); name the ones that don't."""
    counts = np.bincount(labels, minlength=len(classes))
    single = [classes[i] for i in np.flatnonzero(counts < 2)]
    if single:
        raise UserError(f"task {task}: {what} {', '.join(map(repr, single))} "
                        f"{'has' if len(single) == 1 else 'have'} fewer than 2 {why}; a stratified split needs at "
                        "least 2 per class (add samples, or remove the class)")


def cut_split(labels: np.ndarray, test_size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified (train, test) indices: the same seed always gives the same split."""
    n_test = int(test_size) if test_size >= 1 else int(round(len(labels) * float(test_size)))
    n_test = min(max(n_test, 1), len(labels) - 1)
    test, train = stratified_take(labels, n_test, np.random.default_rng([seed, 7]))
    return train, test


def describe_cut(test_size: float | int, seed: int) -> str:
    share = f"{test_size:g} share" if isinstance(test_size, float) else f"{test_size} samples"
    return f"seeded stratified cut ({share}, seed {seed})"


def emit_warnings(task: str, warnings: list[str]) -> None:
    """One stderr line for everything skipped or converted (the full list travels with the data)."""
    if warnings:
        print(f"warning: task {task}: " + "; ".join(warnings), file=sys.stderr)


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def sample_names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


class OwnTask(Task):
    """Base of the user-data tasks: lazily scanned metadata and a data fingerprint in ``version``."""

    kind_name = "own"  # the suite's ``kind:`` value
    modality = "vision"
    loader_version = "1"  # bump when the preparation changes: every cached array and cell key changes with it

    def __init__(self, spec: dict[str, Any]):
        self.spec = dict(spec)  # normalised: absolute paths, defaults filled in (picklable; rebuilds the task)
        self._metadata: TaskMetadata | None = None
        self._fingerprint: str | None = None
        self.warnings: list[str] = []

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.spec["name"]

    @property
    def metadata(self) -> TaskMetadata:  # type: ignore[override]
        if self._metadata is None:
            self._metadata = self._scan_metadata()
        return self._metadata

    @property
    def version(self) -> str:  # type: ignore[override]
        """Loader version + data fingerprint, taken once per process (``load`` always rescans)."""
        if self._fingerprint is None:
            self._fingerprint = self.fingerprint()
        return f"{self.loader_version}+{self._fingerprint[:16]}"

    def _make_metadata(self, classes: tuple[str, ...], counts: Counter, description: str) -> TaskMetadata:
        if len(classes) < 2:
            raise UserError(f"task {self.name}: needs at least two classes, found {len(classes)} "
                            f"({', '.join(map(repr, classes)) or 'none'}) in {self.spec.get('path')}")
        return TaskMetadata(name=self.name, description=self.spec.get("description") or description,
                            modality=self.modality, classes=classes, source=str(self.spec.get("path")),
                            license="user data", main_metric=main_metric(counts))

    @abstractmethod
    def fingerprint(self) -> str:
        """A hex digest of the data's content and of every option that shapes the prepared splits."""

    @abstractmethod
    def _scan_metadata(self) -> TaskMetadata:
        """Metadata from a cheap look at the data (class names and counts), before any decoding."""
