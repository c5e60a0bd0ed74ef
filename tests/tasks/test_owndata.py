"""User-data tasks (bench.owndata) on generated image folders and tables: layouts, errors, cache, splits, runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from bench.infra import cache
from bench.core.errors import UserError
from bench.owndata import make_task
from bench.owndata.common import OwnTaskData

FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "webp": "WEBP"}


def save_image(path: Path, rng: np.random.Generator, grey: bool = False, size: tuple[int, int] = (24, 32)) -> Path:
    """A random flat colour with noise, in the format the extension names (JPEG/WebP at high quality)."""
    h, w = size
    colour = rng.integers(0, 256, size=(1 if grey else 3,))
    pixels = np.clip(colour + rng.integers(-10, 10, size=(h, w, len(colour))), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels[..., 0] if grey else pixels)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"quality": 95} if path.suffix in (".jpg", ".webp") else {}
    image.save(path, FORMATS[path.suffix[1:]], **extra)
    return path


def image_folder(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """Class folders of mixed formats, grey and colour, several sizes."""
    rng = np.random.default_rng(seed)
    exts = list(FORMATS)
    for c, (name, n) in enumerate(counts.items()):
        for i in range(n):
            size = (int(rng.integers(12, 40)), int(rng.integers(12, 40)))
            save_image(root / name / f"{i:03d}.{exts[(i + c) % 4]}", rng, grey=i % 3 == 0, size=size)
    return root


def task(path: Path, **options):
    return make_task({"name": options.pop("name", "my-photos"), "kind": "image-folder", "path": str(path),
                      "image_size": options.pop("image_size", 16), **options})


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_override", tmp_path / "cache")
    return tmp_path / "cache" / "owndata"


# --- specs ------------------------------------------------------------------------------------------------------
def test_unknown_option_names_the_key_and_the_valid_ones(tmp_path):
    with pytest.raises(UserError, match=r"unknown option 'imagesize' \(did you mean 'image_size'\?\); valid options: "
                                        r"name, kind, path, description, image_size, test_size, seed"):
        make_task({"name": "p", "kind": "image-folder", "path": str(tmp_path), "imagesize": 32})
    with pytest.raises(UserError, match="unknown option 'column'.*text, label, split"):
        make_task({"name": "t", "kind": "text-table", "path": "a.csv", "column": "x"})


@pytest.mark.parametrize("spec, message", [
    ({"name": "Bad Name!", "kind": "image-folder", "path": "x"}, "not a safe name"),
    ({"name": "p", "kind": "images", "path": "x"}, "unknown kind 'images'; valid kinds: image-folder, text-table"),
    ({"name": "p", "kind": "image-folder"}, "needs 'path'"),
    ({"name": "p", "kind": "image-folder", "path": "x", "test_size": 1.5}, "test_size must be"),
    ({"name": "p", "kind": "image-folder", "path": "x", "image_size": "big"}, "image_size must be an integer"),
    ({"name": "t", "kind": "text-table", "path": "a.csv", "train": "b.csv", "test": "c.csv"}, "either path"),
    ({"name": "t", "kind": "text-table", "train": "b.csv"}, "both train: and test:"),
])
def test_bad_specs_are_one_line_user_errors(spec, message):
    with pytest.raises(UserError, match=message) as err:
        make_task(spec)
    assert "\n" not in str(err.value)


def test_relative_paths_start_at_the_base_dir(tmp_path):
    t = make_task({"name": "p", "kind": "image-folder", "path": "photos"}, base_dir=tmp_path)
    assert t.spec["path"] == str(tmp_path / "photos") and t.spec["image_size"] == 128  # the default
    assert make_task(t.spec).spec == t.spec  # the normalised spec rebuilds the same task (worker processes)


# --- image folders: reading -------------------------------------------------------------------------------------
def test_mixed_formats_modes_and_sizes_decode_to_uint8_rgb(tmp_path, fresh_cache, capsys):
    root = image_folder(tmp_path / "photos", {"cat": 10, "dog": 10})
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("loose file")
    t = task(root)
    assert t.metadata.classes == ("cat", "dog") and t.metadata.modality == "vision"
    assert t.metadata.main_metric == "accuracy"
    data = t.load()
    assert isinstance(data, OwnTaskData)
    assert data.train.x.dtype == torch.uint8 and tuple(data.train.x.shape[1:]) == (3, 16, 16)
    assert len(data.train) + len(data.test) == 20  # the broken file is skipped, not decoded as a sample
    joined = " | ".join(data.warnings)
    assert "1 file(s) unreadable: cat/broken.jpg" in joined
    assert "1 file(s) not an image: dog/notes.txt" in joined
    assert "outside any class folder: README.md" in joined
    # Grey: i % 3 == 0, 4 per class; WebP stores grey as RGB, so 2 of the 8 arrive as colour.
    assert "converted 6 of 20 images to RGB (6 grey (L))" in joined
    assert t.warnings == data.warnings
    err = capsys.readouterr().err
    assert err.count("warning: task my-photos:") == 1 and "cat/broken.jpg" in err


def test_images_are_centre_cropped_to_a_square(tmp_path, fresh_cache):
    """A wide image: white centre square, black margins left and right → the crop is all white."""
    for name in ("a", "b"):
        for i in range(3):
            pixels = np.zeros((20, 60, 3), dtype=np.uint8)
            pixels[:, 20:40] = 255
            (tmp_path / "wide" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(tmp_path / "wide" / name / f"{i}.png")
    data = task(tmp_path / "wide", image_size=8, test_size=2).load()
    assert int(data.train.x.min()) >= 250 and int(data.test.x.min()) >= 250


def test_train_and_test_folders_are_the_split_and_val_counts_as_test(tmp_path, fresh_cache):
    root = tmp_path / "split"
    image_folder(root / "train", {"a": 4, "b": 3})
    image_folder(root / "val", {"a": 2, "b": 1}, seed=1)
    data = task(root).load()
    assert data.train.y.tolist() == [0] * 4 + [1] * 3 and data.test.y.tolist() == [0, 0, 1]
    assert "test: val/ folder" in data.source
    image_folder(root / "test", {"a": 1, "b": 1}, seed=2)  # test/ wins over val/
    data = task(root).load()
    assert data.test.y.tolist() == [0, 1] and "test: test/ folder" in data.source


# --- image folders: what is refused -----------------------------------------------------------------------------
def test_missing_folder_and_one_class_are_refused(tmp_path, fresh_cache):
    with pytest.raises(UserError, match="does not exist"):
        task(tmp_path / "nope").load()
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(UserError, match="is not a folder"):
        _ = task(tmp_path / "file.png").metadata
    image_folder(tmp_path / "one", {"only": 3})
    with pytest.raises(UserError, match="at least two classes, found 1"):
        _ = task(tmp_path / "one").metadata


def test_a_class_without_images_is_refused(tmp_path, fresh_cache):
    root = image_folder(tmp_path / "p", {"a": 3, "b": 3})
    (root / "c").mkdir()
    (root / "c" / "x.txt").write_text("no image")
    with pytest.raises(UserError, match="class 'c' has no image files"):
        _ = task(root).metadata


def test_a_class_whose_every_image_is_corrupt_is_refused(tmp_path, fresh_cache):
    root = image_folder(tmp_path / "p", {"a": 3, "b": 3})
    for i in range(2):
        (root / "c").mkdir(exist_ok=True)
        (root / "c" / f"{i}.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(UserError, match="class 'c' has no usable image"):
        task(root).load()


def test_test_classes_unseen_in_training_are_refused(tmp_path, fresh_cache):
    root = tmp_path / "p"
    image_folder(root / "train", {"a": 3, "b": 3})
    image_folder(root / "test", {"a": 1, "zebra": 1})
    with pytest.raises(UserError, match="test classes unseen in training: 'zebra'"):
        _ = task(root).metadata
    # Unseen after decoding: every training image of 'b' is corrupt, its test image is fine.
    root2 = tmp_path / "q"
    image_folder(root2 / "train", {"a": 3})
    (root2 / "train" / "b").mkdir()
    (root2 / "train" / "b" / "0.png").write_bytes(b"broken")
    image_folder(root2 / "test", {"a": 1, "b": 1})
    with pytest.raises(UserError, match="test classes unseen in training: 'b'"):
        task(root2).load()


def test_a_single_image_class_is_refused_when_a_split_is_cut(tmp_path, fresh_cache):
    root = image_folder(tmp_path / "p", {"a": 5, "lonely": 1})
    with pytest.raises(UserError, match="class 'lonely' has fewer than 2 usable images"):
        task(root).load()


def test_test_folder_without_train_folder_is_refused(tmp_path, fresh_cache):
    image_folder(tmp_path / "p" / "test", {"a": 2, "b": 2})
    with pytest.raises(UserError, match="no train/ folder"):
        _ = task(tmp_path / "p").metadata


# --- image folders: cache, memory-mapping, splits ---------------------------------------------------------------
def test_the_cache_is_keyed_by_content_and_memory_mapped(tmp_path, fresh_cache, capsys):
    root = image_folder(tmp_path / "p", {"a": 6, "b": 6})
    t = task(root)
    first, version, key = t.load(), t.version, t.fingerprint()
    assert isinstance(first.backing, np.memmap)
    assert np.shares_memory(first.train.x.numpy(), first.backing)  # a view of the file, not a copy
    (array,) = fresh_cache.glob("my-photos-*.npy")
    stamp = array.stat().st_mtime_ns
    assert "decoding 12 images" in capsys.readouterr().err

    again = task(root).load()  # a fresh task object: only the folder's content decides
    assert array.stat().st_mtime_ns == stamp and "decoding" not in capsys.readouterr().err
    assert torch.equal(again.train.x, first.train.x) and again.source == first.source

    changed = root / "a" / "000.png"
    save_image(changed, np.random.default_rng(99), size=(30, 30))
    t2 = task(root)
    assert t2.fingerprint() != key and t2.version != version
    third = t2.load()
    assert "decoding 12 images" in capsys.readouterr().err
    assert third.source != first.source  # the feature cache is keyed by the source: it changes too
    assert [p.name for p in fresh_cache.glob("my-photos-*.npy")] != [array.name]  # the stale entry is gone
    assert len(list(fresh_cache.glob("my-photos-*.npy"))) == 1
    assert not list(fresh_cache.glob(".*pool*"))  # the decoding pool is removed
    assert task(root, image_size=20).fingerprint() != t2.fingerprint()  # options are part of the key


def test_a_damaged_cache_entry_is_rebuilt(tmp_path, fresh_cache, capsys):
    root = image_folder(tmp_path / "p", {"a": 4, "b": 4})
    task(root).load()
    (meta,) = fresh_cache.glob("my-photos-*.json")
    meta.write_text("{not json")
    data = task(root).load()
    assert "damaged image cache" in capsys.readouterr().err and len(data.train) + len(data.test) == 8
    assert json.loads(meta.read_text())["n_train"] == len(data.train)


def test_the_cut_split_is_stratified_and_seeded(tmp_path, fresh_cache):
    root = image_folder(tmp_path / "p", {"a": 10, "b": 20})
    t = task(root)
    assert t.metadata.main_metric == "macro_f1"  # 20 / 10 > 1.5
    data = t.load()
    assert np.bincount(data.test.y.numpy()).tolist() == [2, 4]  # 20 % of each class
    assert np.bincount(data.train.y.numpy()).tolist() == [8, 16]
    assert "seeded stratified cut (0.2 share, seed 0)" in data.source

    def test_pixels(**options):
        cache._override = tmp_path / f"cache-{len(list(tmp_path.glob('cache-*')))}"  # fresh: really re-cut
        return task(root, **options).load().test.x.clone()

    assert torch.equal(test_pixels(seed=3), test_pixels(seed=3))
    assert not torch.equal(test_pixels(seed=3), test_pixels(seed=4))
    assert len(task(root, test_size=9).load().test) == 9


# --- text tables ------------------------------------------------------------------------------------------------
def table(n_per_class: dict[str, int], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"body": f"ticket {i} about {label} " + " ".join(rng.choice(["x", "y", "z"], size=3)), "queue": label}
            for label, n in n_per_class.items() for i in range(n)]
    return pd.DataFrame(rows)


def text_task(path, **options):
    return make_task({"name": "my-tickets", "kind": "text-table", "path": str(path), **options})


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl", "json", "parquet", "csv.gz"])
def test_tables_in_every_format(tmp_path, ext):
    frame = table({"billing": 10, "bugs": 10})
    path = tmp_path / f"tickets.{ext}"
    if ext.startswith("csv"):
        frame.to_csv(path, index=False)
    elif ext == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif ext == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif ext == "json":
        frame.to_json(path, orient="records")
    else:
        frame.to_parquet(path)
    t = text_task(path, text="body", label="queue")
    assert t.metadata.classes == ("billing", "bugs") and t.metadata.modality == "text"
    data = t.load()
    assert len(data.train) == 16 and len(data.test) == 4 and isinstance(data.train.x[0], str)
    assert data.train.y.dtype == torch.long and f"tickets.{ext}" in data.source


def test_format_option_overrides_the_extension(tmp_path):
    path = tmp_path / "tickets.data"
    table({"a": 3, "b": 3}).to_csv(path, sep="\t", index=False)
    with pytest.raises(UserError, match="cannot tell the table format"):
        _ = text_task(path, text="body", label="queue").metadata
    assert len(text_task(path, text="body", label="queue", format="tsv").load().train) == 4


def test_missing_file_and_missing_column(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        text_task(tmp_path / "nope.csv").load()
    path = tmp_path / "t.csv"
    table({"a": 3, "b": 3}).to_csv(path, index=False)
    with pytest.raises(UserError, match="t.csv has no column 'text' \\(option text\\); its columns: body, queue"):
        _ = text_task(path).metadata
    with pytest.raises(UserError, match="no column 'label' \\(option label\\)"):
        _ = text_task(path, text="body").metadata
    with pytest.raises(UserError, match="has no split column 'part'; its columns: body, queue"):
        _ = text_task(path, text="body", label="queue", split="part").metadata


def test_empty_texts_are_dropped_and_counted_and_all_empty_is_an_error(tmp_path, capsys):
    frame = table({"a": 5, "b": 5})
    frame.loc[[0, 6], "body"] = ["   ", ""]
    frame.loc[1, "queue"] = ""
    frame.loc[2, "body"] = frame.loc[3, "body"]
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    data = text_task(path, text="body", label="queue", test_size=2).load()
    assert len(data.train) + len(data.test) == 6
    assert data.warnings == ["dropped 1 row(s): duplicate text", "dropped 2 row(s): empty text",
                             "dropped 1 row(s): no label"]
    assert "warning: task my-tickets: dropped 1 row(s): duplicate text" in capsys.readouterr().err
    frame["body"] = " "
    frame.to_csv(path, index=False)
    with pytest.raises(UserError, match="every text in column 'body' is empty"):
        text_task(path, text="body", label="queue").load()


def test_a_label_that_occurs_once_is_named(tmp_path):
    path = tmp_path / "t.csv"
    table({"a": 5, "b": 5, "rare": 1}).to_csv(path, index=False)
    with pytest.raises(UserError, match="label 'rare' has fewer than 2 rows"):
        _ = text_task(path, text="body", label="queue").metadata


def test_split_column_val_is_test_and_unseen_test_labels_are_refused(tmp_path):
    frame = table({"a": 6, "b": 6})
    frame["split"] = ["train"] * 4 + ["val"] + ["test"] + ["train"] * 4 + ["Validation"] + ["test"]
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    data = text_task(path, text="body", label="queue").load()
    assert data.train.y.tolist() == [0] * 4 + [1] * 4 and data.test.y.tolist() == [0, 0, 1, 1]
    assert "split column 'split'" in data.source
    assert len(text_task(path, text="body", label="queue", split=None).load().test) == 2  # column ignored: 20 % cut

    frame.loc[11, "queue"] = "new"
    frame.to_csv(path, index=False)
    with pytest.raises(UserError, match="test labels unseen in training: 'new'"):
        _ = text_task(path, text="body", label="queue").metadata
    frame["split"] = "holdout"
    frame.to_csv(path, index=False)
    with pytest.raises(UserError, match="values \\['holdout'\\]; use train or test"):
        _ = text_task(path, text="body", label="queue").metadata


def test_train_and_test_files_and_integer_labels(tmp_path):
    frame = pd.DataFrame({"text": [f"text number {i}" for i in range(24)], "label": [2, 10, 1] * 8})
    frame[:18].to_parquet(tmp_path / "train.parquet")
    frame[18:].to_json(tmp_path / "test.jsonl", orient="records", lines=True)
    t = make_task({"name": "nums", "kind": "text-table", "train": str(tmp_path / "train.parquet"),
                   "test": str(tmp_path / "test.jsonl")})
    assert t.metadata.classes == ("1", "2", "10")  # numeric order, not '1' < '10' < '2'
    data = t.load()
    assert len(data.train) == 18 and len(data.test) == 6 and "test: test file test.jsonl" in data.source
    assert data.test.y.tolist() == [1, 2, 0] * 2


def test_the_text_fingerprint_follows_the_content(tmp_path):
    path = tmp_path / "t.csv"
    table({"a": 5, "b": 5}).to_csv(path, index=False)
    before = text_task(path, text="body", label="queue")
    version = before.version
    assert text_task(path, text="body", label="queue").version == version
    assert text_task(path, text="body", label="queue", seed=1).version != version
    table({"a": 5, "b": 6}).to_csv(path, index=False)
    after = text_task(path, text="body", label="queue")
    assert after.version != version and len(after.load().train) + len(after.load().test) == 11


# --- end to end: the real strategies on user data ---------------------------------------------------------------
def _register(monkeypatch, t):
    from bench.run.taskdata import load_task_data
    from tests.helpers.tiny import register

    register(monkeypatch, "task", t)
    load_task_data.cache_clear()


def test_vision_strategies_run_on_an_image_folder(tmp_path, fresh_cache, monkeypatch):
    from bench.run.cell import run_cell
    from tests.strategies.test_strategies_vision import cells_for
    from tests.helpers.tiny import TINY_MODEL, check_contract, shapes_images, tiny_weights

    root = tmp_path / "shapes"
    for side, (x, y) in (("train", shapes_images(300, seed=1)), ("test", shapes_images(90, seed=2))):
        for i, (pixels, label) in enumerate(zip(x, y)):
            path = root / side / f"class-{int(label)}" / f"{i:03d}.{'png' if i % 2 else 'bmp'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[0].numpy()).save(path)
    t = make_task({"name": "tiny-shapes", "kind": "image-folder", "path": str(root), "image_size": 16})
    _register(monkeypatch, t)
    weights = f"{TINY_MODEL}@{tiny_weights(tmp_path / 'tiny.safetensors')}"
    for strategy in ("from-scratch", "feature-extraction"):
        (cell,) = cells_for(strategy, weights)
        assert cell.versions[0] == t.version
        row = run_cell(cell, "t", torch.device("cpu")).row
        check_contract(row, strategy)
        assert row["modality"] == "vision"


def test_text_strategies_run_on_a_csv(tmp_path, monkeypatch):
    from bench.plan import registry
    from bench.run.cell import run_cell
    from tests.strategies.test_text_strategies import cells_for
    from tests.helpers.text_fixtures import sentences, vectors_table, write_word2vec_text
    from tests.helpers.tiny import check_contract

    texts, y = sentences(390, seed=1)
    frame = pd.DataFrame({"review": texts, "sentiment": np.where(y.numpy() == 1, "positive", "negative")})
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    t = make_task({"name": "tiny-sentiment", "kind": "text-table", "path": str(tmp_path / "reviews.csv"),
                   "text": "review", "label": "sentiment", "test_size": 90})
    _register(monkeypatch, t)
    data = t.load()
    vectors = str(write_word2vec_text(tmp_path / "tiny.vec", vectors_table()))
    assert t.metadata.classes == ("negative", "positive") and len(data.test) == 90
    for strategy in registry.plugins("strategy"):
        (cell,) = cells_for(strategy, vectors)
        row = run_cell(cell, "t", torch.device("cpu")).row
        check_contract(row, strategy)
        assert row["modality"] == "text"
        if strategy == "zero-shot":  # the class names come from the label values: the vectors know those words
            assert row["accuracy"] > 0.9


def test_tasks_survive_pickling(tmp_path):
    """Worker processes get the task object: it must pickle small (its spec), without loaded data."""
    import pickle

    path = tmp_path / "t.csv"
    table({"a": 3, "b": 3}).to_csv(path, index=False)
    t = text_task(path, text="body", label="queue")
    t.load()
    clone = pickle.loads(pickle.dumps(t))
    assert clone.spec == t.spec and clone.version == t.version and len(pickle.dumps(t)) < 4000
    assert os.fspath(path) in clone.spec["path"]


def test_a_suite_of_own_data_runs_every_base_strategy_estimates_and_reports(tmp_path, fresh_cache, monkeypatch):
    """The README's example, small: a suite file declaring a generated image folder and a CSV, the five base
    strategies through ``run_suite``, then ``estimate`` and the report on the same results directory."""
    import yaml

    from bench.backbones import text_embed
    from bench.run import features as features_module
    from bench.plan import registry
    from bench.run.taskdata import load_task_data
    from bench.run.estimate import run_estimates
    from bench.plan.suite import load_suite
    from bench.runner import run_suite
    from report import build_report
    from tests.helpers.text_fixtures import sentences, tiny_bert, vectors_table, write_word2vec_text
    from tests.helpers.tiny import TINY_MODEL, shapes_images, tiny_weights

    # Image folder tasks have no hand-made ImageNet map: zero-shot maps class names with a sentence model. A tiny
    # random BERT stands in for MiniLM (its weights are a registry download; the code path is the same).
    monkeypatch.setattr(text_embed, "minilm_path", lambda: tiny_bert(tmp_path / "bert"))
    monkeypatch.setenv(registry.OWN_TASKS_ENV, "")  # the suite's declarations end with this test
    load_task_data.cache_clear()
    features_module._FEATURES.clear()
    x, y = shapes_images(150, seed=1)
    for i, (pixels, label) in enumerate(zip(x, y)):
        path = tmp_path / "photos" / ("square", "corner", "bar")[int(label)] / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[0].numpy()).save(path)
    texts, labels = sentences(200, seed=1)
    pd.DataFrame({"body": texts, "queue": np.where(labels.numpy() == 1, "positive", "negative")}).to_csv(
        tmp_path / "tickets.csv", index=False)
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    vectors = write_word2vec_text(tmp_path / "tiny.vec", vectors_table())
    strategies = ["from-scratch", "feature-extraction", "partial-freeze", "full-fine-tune", "zero-shot"]
    suite_file = tmp_path / "my-suite.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "my-data",
        "tasks": [{"name": "my-photos", "kind": "image-folder", "path": "photos", "image_size": 16},
                  {"name": "my-tickets", "kind": "text-table", "path": "tickets.csv", "text": "body",
                   "label": "queue"}],
        "backbones": [f"{TINY_MODEL}@{weights}", str(vectors)],
        "strategies": strategies,
        "params": {"image_size": 16, "epochs": 2, "batch_size": 32, "eval_batch_size": 64, "min_steps_per_epoch": 2,
                   "val_size": 20},
    }), encoding="utf-8")
    try:
        suite = load_suite(str(suite_file))
        results = tmp_path / "results"
        summary = run_suite(suite, results, suite_file)
        assert (summary.total, summary.failed) == (10, 0)
        estimated = run_estimates(suite, results, samples=100)
        assert (estimated.total, estimated.failed) == (4, 0)
        frame = pd.read_parquet(results / "results.parquet")
        role = frame["role"].fillna("final")
        final, est = frame[role == "final"], frame[role == "estimate"]
        assert sorted(final.groupby("task")["strategy"].apply(sorted).to_dict().items()) == [
            ("my-photos", sorted(strategies)), ("my-tickets", sorted(strategies))]
        assert (final["status"] == "ok").all(), final.loc[final["status"] != "ok", "error"].tolist()
        assert set(est["backbone"]) == {f"{TINY_MODEL}@{weights}", f"{TINY_MODEL}@{weights}@random", str(vectors),
                                        f"{vectors}@random"}
        assert (est["status"] == "ok").all() and est["logme"].notna().all()
        assert est.loc[est["task"] == "my-photos", "leep"].notna().all()  # the ImageNet head of the vision model
        assert est.loc[est["task"] == "my-tickets", "leep"].isna().all()  # word vectors have no source classifier
        html = build_report(results).read_text(encoding="utf-8")
        assert "Leaderboard — my-photos" in html and "Leaderboard — my-tickets" in html
        assert "Transferability estimates — my-photos" in html and "Transferability estimates — my-tickets" in html
        assert "τ is not meaningful with fewer than 3 backbones" in html  # one backbone per modality here
        leaderboard = pd.read_csv(results / "report_leaderboard.csv")
        assert "estimate" not in set(leaderboard["strategy"]) and len(leaderboard) == 10
    finally:
        load_task_data.cache_clear()
