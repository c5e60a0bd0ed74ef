"""A folder of images, one sub-folder per class (torchvision ``ImageFolder`` layout), as a vision task.

Layouts: ``root/<class>/**/<image>``, or ``root/train/<class>/...`` with ``root/test/<class>/...`` (``val/`` is read
as the test split when there is no ``test/``). Without a test folder a seeded, stratified test split is cut.

Every image is decoded once with Pillow (EXIF rotation applied, grey / palette / alpha converted to RGB and
counted), centre-cropped to a square and resized (bicubic) to ``image_size``, and stored as a uint8 [N, 3, S, S]
``.npy`` in the cache, train rows first, then test rows. The file is written incrementally (``open_memmap``) and
published atomically; it is keyed by every file's relative path, size and mtime plus the options, and it is read
back memory-mapped, so sets larger than memory work and an unchanged folder is never decoded again.
"""

from __future__ import annotations

import json
import os
import sys
import warnings as py_warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from bench.infra.atomic import atomic_path, write_json
from bench.infra.cache import cache_dir
from bench.core.errors import UserError
from bench.owndata.common import (VAL_AS_TEST, OwnTask, OwnTaskData, check_keys, cut_split, describe_cut, digest,
                                  emit_warnings, int_option, need_two_each, resolve_path, sample_names,
                                  test_size_option)
from bench.core.task import Split, TaskMetadata

OPTIONS = ("image_size", "test_size", "seed")
CHUNK = 256  # images decoded per batch of threads: bounds what is held in memory at once
# Images announcing more pixels are skipped before decoding (decompression bombs: a few KB of PNG can claim
# hundreds of megapixels). Pillow's own guard only warns below twice its limit and would decode such an image;
# this one never decodes it. 89 megapixels is Pillow's limit: above any camera's photo, below ~270 MB as RGB.
MAX_PIXELS = 89_478_485
TOO_LARGE = "too large to decode"
DEEP_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def image_extensions() -> frozenset[str]:
    """Extensions of every format this Pillow can open (PNG, JPEG, WebP, BMP, GIF, TIFF, ...)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


@dataclass
class Layout:
    """What a scan of the folder found, before decoding."""

    classes: tuple[str, ...]
    files: dict[str, list[tuple[Path, int]]]  # "train" / "test" → [(file, class index)]; no "test" → cut a split
    test_from: str | None  # "test" or "val" folder, None when the split is cut
    entries: list[tuple[str, int, int]]  # (relative path, size, mtime_ns) of every file: the content key
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason → relative paths
    notes: list[str] = field(default_factory=list)


def _walk(folder: Path, loops: list[str] | None = None, seen: set[tuple[int, int]] | None = None) -> list[Path]:
    """Every non-hidden file below ``folder``, sorted (hidden files such as .DS_Store are system metadata).

    Symbolic links to folders are followed, each real folder once: a link back to a folder being walked (a loop;
    its path is added to ``loops``) would otherwise repeat every image below it, and two such links grow the walk
    exponentially. ``seen``: real folders already walked (shared across calls: a link from one class folder to
    another, or up to the root, is a loop too).
    """
    out = []
    seen = set() if seen is None else seen
    for here, dirs, names in os.walk(folder, followlinks=True):
        stat = os.stat(here)
        if (stat.st_dev, stat.st_ino) in seen:  # reached again through a link: already walked
            if loops is not None:
                loops.append(here)
            dirs[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(here) / n for n in sorted(names) if not n.startswith(".")]
    return out


def _identity(folder: Path) -> tuple[int, int]:
    stat = os.stat(folder)
    return stat.st_dev, stat.st_ino


def _side(folder: Path, root: Path, layout: Layout, side: str, classes: tuple[str, ...] | None, task: str) -> None:
    """Collect one side's (file, class) pairs; the class folders of ``test`` must be classes of ``train``."""
    exts = image_extensions()
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = tuple(p.name for p in class_dirs)
    if classes is None:
        classes = layout.classes = names
    unseen = sorted(set(names) - set(classes))
    if unseen:
        raise UserError(f"task {task}: test classes unseen in training: {', '.join(map(repr, unseen))} "
                        f"(folders in {folder} with no match in the training folders)")
    index = {name: i for i, name in enumerate(classes)}
    pairs: list[tuple[Path, int]] = []
    seen = {_identity(root), _identity(folder)}  # a link up to them from a class folder is a loop
    for class_dir in class_dirs:
        found = 0
        loops: list[str] = []
        for file in _walk(class_dir, loops, seen):
            rel = file.relative_to(root).as_posix()
            if file.suffix.lower() in exts:
                pairs.append((file, index[class_dir.name]))
                found += 1
            else:
                layout.skipped.setdefault("not an image", []).append(rel)
        layout.skipped.setdefault("symlink loop", []).extend(Path(p).relative_to(root).as_posix() for p in loops)
        if not layout.skipped["symlink loop"]:
            del layout.skipped["symlink loop"]
        if not found:
            raise UserError(f"task {task}: class {class_dir.name!r} has no image files in {class_dir}")
    loose = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    if loose:
        layout.skipped.setdefault("outside any class folder", []).extend(
            p.relative_to(root).as_posix() for p in sorted(loose))
    layout.files[side] = pairs


def scan(root: Path, task: str) -> Layout:
    """Find the layout, the class names (sorted folder names) and every file's key, without decoding."""
    if not root.exists():
        raise UserError(f"task {task}: image folder {root} does not exist (fix 'path' in the suite)")
    if not root.is_dir():
        raise UserError(f"task {task}: {root} is not a folder; an image-folder task needs one sub-folder per class")
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    test_name = "test" if "test" in subdirs else next((n for n in VAL_AS_TEST if n in subdirs), None)
    layout = Layout(classes=(), files={}, test_from=None, entries=[])
    if "train" in subdirs:
        _side(subdirs["train"], root, layout, "train", None, task)
        if test_name:
            layout.test_from = test_name
            _side(subdirs[test_name], root, layout, "test", layout.classes, task)
        others = sorted(set(subdirs) - {"train", test_name} - {n for n in subdirs if n.startswith(".")})
        if others:
            layout.notes.append(f"ignored folders beside train/: {', '.join(others)}")
    elif test_name:
        raise UserError(f"task {task}: {root} has a {test_name}/ folder but no train/ folder; add train/ "
                        "(or put the class folders directly in the root)")
    else:
        _side(root, root, layout, "train", None, task)
    for file in _walk(root):
        stat = file.stat()
        layout.entries.append((file.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    return layout


def decode(path: Path, size: int) -> tuple[np.ndarray | None, str]:
    """One image → uint8 [3, size, size] (centre square, bicubic) and its original mode; (None, reason) if bad.

    Reasons: ``TOO_LARGE`` and the pixel count when the header announces more than ``MAX_PIXELS`` (read before
    anything is decoded: a decompression bomb never reaches memory), else the exception's name.
    """
    try:
        with py_warnings.catch_warnings():  # Pillow warns about large images; they are skipped just below
            py_warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)  # reads the header only
        with image:
            mode = image.mode
            width, height = image.size
            if width * height > MAX_PIXELS:
                return None, f"{TOO_LARGE} ({width}x{height} pixels"
            image.draft("RGB", (size, size))  # JPEG: decode at the smallest scale still >= size (much faster)
            image = ImageOps.exif_transpose(image)
            if image.mode in DEEP_GREY:  # 16/32-bit grey: Pillow's convert("RGB") clips at 255 instead of scaling
                image = _deep_to_grey(image)
            if image.mode != "RGB":
                with py_warnings.catch_warnings():  # palette + transparency: Pillow asks for RGBA; RGB drops it
                    py_warnings.simplefilter("ignore", UserWarning)
                    image = image.convert("RGBA" if image.mode == "P" else image.mode).convert("RGB")
            # Crop, then resize: resizing with a box would blend in pixels from outside the centre square.
            w, h = image.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            image = image.crop((left, top, left + side, top + side))
            image = image.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1), mode
    except Image.DecompressionBombError:  # over twice Pillow's limit: refused by Pillow's header check
        return None, f"{TOO_LARGE} (over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        return None, type(err).__name__


def _deep_to_grey(image: Image.Image) -> Image.Image:
    """A 16- or 32-bit grey image as 8-bit grey, scaled by its bit depth (16-bit: the high byte)."""
    pixels = np.asarray(image).astype(np.int64)
    top = 65535 if image.mode.startswith("I;16") or pixels.max(initial=0) <= 65535 else 2**31 - 1
    return Image.fromarray((np.clip(pixels, 0, top) * 255 // top).astype(np.uint8), "L")


class ImageFolderTask(OwnTask):
    """A vision task read from a class-per-folder image tree (see the module docstring)."""

    kind_name = "image-folder"
    modality = "vision"

    @classmethod
    def from_spec(cls, spec: dict[str, Any], base_dir: Path | None = None) -> ImageFolderTask:
        check_keys(spec, cls.kind_name, OPTIONS)
        if "path" not in spec:
            raise UserError(f"task {spec['name']!r} (image-folder): needs 'path', the folder with one sub-folder "
                            "per class")
        return cls({"name": spec["name"], "kind": cls.kind_name,
                    "path": str(resolve_path(spec["path"], f"task {spec['name']!r}", base_dir)),
                    "description": spec.get("description"),
                    "image_size": int_option(spec, "image_size", 128, 8, 1024),
                    "test_size": test_size_option(spec), "seed": int_option(spec, "seed", 0, 0, 2**32 - 1)})

    @property
    def root(self) -> Path:
        return Path(self.spec["path"])

    def _key(self, layout: Layout) -> str:
        options = {k: self.spec[k] for k in OPTIONS}
        return digest({"loader": self.loader_version, "options": options, "files": layout.entries})

    def fingerprint(self) -> str:
        return self._key(scan(self.root, self.name))

    def _scan_metadata(self) -> TaskMetadata:
        layout = scan(self.root, self.name)
        counts = Counter(label for _, label in layout.files["train"])
        n = sum(len(v) for v in layout.files.values())
        desc = f"image folder {self.root.name}: {n} image files, {len(layout.classes)} classes"
        return self._make_metadata(layout.classes, Counter({layout.classes[k]: v for k, v in counts.items()}), desc)

    def load(self, path: Path | None = None) -> OwnTaskData:
        if path is not None and Path(path).resolve() != self.root:
            return type(self)(self.spec | {"path": str(Path(path).resolve())}).load()
        layout = scan(self.root, self.name)
        key = self._key(layout)
        stem = cache_dir() / "owndata" / f"{self.name}-{key[:24]}"
        meta = _read_meta(stem)
        if meta is None:
            meta = self._build(layout, key, stem)
        array = np.load(stem.with_suffix(".npy"), mmap_mode="c")  # copy-on-write: writable views, file untouched
        n_train = meta["n_train"]
        self.warnings = list(meta["warnings"])
        emit_warnings(self.name, self.warnings)
        train = Split(torch.from_numpy(array[:n_train]), torch.tensor(meta["y_train"], dtype=torch.long))
        test = Split(torch.from_numpy(array[n_train:]), torch.tensor(meta["y_test"], dtype=torch.long))
        return OwnTaskData(train, test, meta["source"], warnings=self.warnings, backing=array)

    def _build(self, layout: Layout, key: str, stem: Path) -> dict[str, Any]:
        """Decode every image into a pool (file order), check the classes, write train-then-test rows."""
        size = self.spec["image_size"]
        files = layout.files["train"] + layout.files.get("test", [])
        sides = np.array([0] * len(layout.files["train"]) + [1] * len(layout.files.get("test", [])))
        labels = np.array([label for _, label in files], dtype=np.int64)
        print(f"task {self.name}: decoding {len(files)} images at {size}px into the cache (once)", file=sys.stderr)
        ok = np.zeros(len(files), dtype=bool)
        modes: Counter = Counter()
        bad: list[str] = []
        too_large: list[str] = []
        stem.parent.mkdir(parents=True, exist_ok=True)
        pool_path = stem.parent / f".{stem.name}.{os.getpid()}.pool.npy"  # decoded in file order; removed below
        try:
            pool = np.lib.format.open_memmap(pool_path, mode="w+", dtype=np.uint8, shape=(len(files), 3, size, size))
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as threads:  # Pillow frees the GIL
                for start in range(0, len(files), CHUNK):
                    chunk = files[start:start + CHUNK]
                    for i, (pixels, mode) in enumerate(threads.map(lambda f: decode(f[0], size), chunk), start):
                        if pixels is None:
                            rel = files[i][0].relative_to(self.root).as_posix()
                            if mode.startswith(TOO_LARGE):  # "too large to decode (WxH pixels" + ")" below
                                too_large.append(f"{rel} {mode[len(TOO_LARGE) + 1:]})")
                            else:
                                bad.append(rel)
                        else:
                            pool[i], ok[i] = pixels, True
                            modes[mode] += 1
            order, source_side, n_train = self._order(layout, labels, sides, ok)
            with atomic_path(stem.with_suffix(".npy")) as out_path:
                out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.uint8,
                                                shape=(len(order), 3, size, size))
                for start in range(0, len(order), 1024):  # chunked: never the whole set in memory
                    out[start:start + 1024] = pool[order[start:start + 1024]]
                out.flush()
                del out, pool
        finally:
            pool_path.unlink(missing_ok=True)
        skipped = dict(layout.skipped)
        if bad:
            skipped["unreadable"] = bad
        if too_large:
            skipped[f"{TOO_LARGE} (over {MAX_PIXELS / 1e6:.0f} megapixels, not decoded)"] = too_large
        warnings = [f"skipped {len(v)} file(s) {why}: {sample_names(v)}" for why, v in skipped.items()]
        converted = {m: n for m, n in modes.items() if m != "RGB"}
        if converted:
            warnings.append(f"converted {sum(converted.values())} of {sum(modes.values())} images to RGB ("
                            + ", ".join(f"{n} {_MODE_NAMES.get(m, m)}" for m, n in sorted(converted.items())) + ")")
        warnings += layout.notes
        meta = {"fingerprint": key, "name": self.name, "path": str(self.root), "classes": list(layout.classes),
                "n_train": n_train, "y_train": labels[order[:n_train]].tolist(),
                "y_test": labels[order[n_train:]].tolist(), "warnings": warnings,
                "source": f"image-folder:{self.root} ({n_train} train + {len(order) - n_train} test images, "
                          f"{size}px, content {key[:12]}; test: {source_side})"}
        write_json(stem.with_suffix(".json"), meta)  # published last: the .json marks a complete cache entry
        _drop_stale(stem, self.name, str(self.root))
        return meta

    def _order(self, layout: Layout, labels: np.ndarray, sides: np.ndarray,
               ok: np.ndarray) -> tuple[np.ndarray, str, int]:
        """Pool rows in output order (train, then test), how the test split was made, and the train count."""
        classes = layout.classes
        for i in np.flatnonzero(np.bincount(labels[ok], minlength=len(classes)) == 0):
            raise UserError(f"task {self.name}: class {classes[i]!r} has no usable image (every file failed to "
                            "decode); fix or remove those files")
        if layout.test_from is None:
            usable = np.flatnonzero(ok)
            need_two_each(labels[usable], classes, self.name, "class", "usable images")
            train, test = cut_split(labels[usable], self.spec["test_size"], self.spec["seed"])
            train, test = usable[train], usable[test]
            how = describe_cut(self.spec["test_size"], self.spec["seed"])
        else:
            train, test = np.flatnonzero(ok & (sides == 0)), np.flatnonzero(ok & (sides == 1))
            unseen = sorted(set(labels[test]) - set(labels[train]))
            if unseen:
                raise UserError(f"task {self.name}: test classes unseen in training: "
                                f"{', '.join(repr(classes[i]) for i in unseen)} (no usable training image)")
            need_two_each(labels[train], classes, self.name, "class", "usable training images")
            how = f"{layout.test_from}/ folder"
        return np.concatenate([train, test]), how, len(train)


_MODE_NAMES = {"L": "grey (L)", "LA": "grey+alpha (LA)", "P": "palette (P)", "RGBA": "RGBA", "CMYK": "CMYK",
               "I;16": "16-bit grey", "I": "32-bit grey", "1": "black-and-white (1)"}


def _read_meta(stem: Path) -> dict[str, Any] | None:
    """A complete cache entry's metadata, or None (absent, or damaged: then it is rebuilt)."""
    meta_path, array_path = stem.with_suffix(".json"), stem.with_suffix(".npy")
    if not (meta_path.is_file() and array_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        shape = np.load(array_path, mmap_mode="r").shape
        if shape[0] != len(meta["y_train"]) + len(meta["y_test"]):
            raise ValueError("row count")
        return meta
    except (OSError, ValueError, KeyError) as err:
        print(f"warning: damaged image cache {stem.name} ({type(err).__name__}); rebuilding it", file=sys.stderr)
        return None


def _drop_stale(stem: Path, name: str, root: str) -> None:
    """Remove older cache entries of the same task and folder: an edited photo folder must not pile up copies."""
    for other in stem.parent.glob(f"{name}-*.json"):
        if other.with_suffix("") == stem:
            continue
        try:
            meta = json.loads(other.read_text(encoding="utf-8"))
            if meta.get("name") != name or meta.get("path") != root:
                continue
        except (OSError, ValueError):
            continue
        other.with_suffix(".npy").unlink(missing_ok=True)
        other.unlink(missing_ok=True)
