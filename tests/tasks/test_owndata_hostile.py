"""Own data under hostile input: every case is generated here, and each one is either skipped and counted (the task
loads, the warning says how many) or refused with one line (a UserError; exit 2 from the CLI), never a traceback,
a hang or an out-of-memory kill.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bench.core.errors import UserError
from tests.tasks.test_owndata import fresh_cache, image_folder, table, task, text_task  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("fresh_cache")  # image caches in tmp, never the shared test cache


def bomb_png(path: Path, side: int) -> Path:
    """A valid grey PNG of side x side pixels (hundreds of megapixels) that is a few hundred KB on disk: zeros
    compress ~1000:1. Written row by row, so making it never holds the image in memory either."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    squeeze = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + one byte per pixel
    idat = b"".join(squeeze.compress(row * 500) for _ in range(side // 500)) + squeeze.flush()
    with path.open("wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def warnings_of(data) -> str:
    return " | ".join(data.warnings)


# --- images -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", [16_000, 10_000])  # 256 MP: Pillow refuses it; 100 MP: Pillow only warns
def test_a_decompression_bomb_is_skipped_and_counted_never_decoded(tmp_path, side):
    root = image_folder(tmp_path / "photos", {"cat": 4, "dog": 4})
    bomb = bomb_png(root / "cat" / "huge.png", side)
    assert bomb.stat().st_size < 2_000_000
    data = task(root).load()
    assert len(data.train) + len(data.test) == 8
    size = f"{side}x{side} pixels" if side == 10_000 else "over 179 megapixels"  # (what Pillow's header check says)
    assert f"skipped 1 file(s) too large to decode (over 89 megapixels, not decoded): cat/huge.png ({size})" \
        in warnings_of(data)


def test_the_bomb_costs_no_memory(tmp_path):
    """Peak memory of a fresh process loading the folder with and without the bomb: decoding 256 megapixels
    would add at least 256 MB (768 MB as RGB); the guard reads the header only."""
    root = image_folder(tmp_path / "photos", {"cat": 4, "dog": 4})
    script = ("import resource, sys; from bench.infra import cache; cache.set_cache_dir(sys.argv[2]);"
              "from bench.owndata import make_task;"
              "make_task({'name': 'p', 'kind': 'image-folder', 'path': sys.argv[1], 'image_size': 16}).load();"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")

    def peak_kb(cache: str) -> int:
        out = subprocess.run([sys.executable, "-c", script, str(root), str(tmp_path / cache)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, env=os.environ | {"PYTHONPATH": str(ROOT)})
        assert out.returncode == 0, out.stderr
        return int(out.stdout.strip().splitlines()[-1])

    without = peak_kb("cache-a")
    bomb_png(root / "cat" / "huge.png", 16_000)
    with_bomb = peak_kb("cache-b")
    assert with_bomb - without < 128_000, (without, with_bomb)


def test_a_truncated_jpeg_is_skipped_and_counted(tmp_path):
    root = image_folder(tmp_path / "photos", {"cat": 4, "dog": 4})
    whole = root / "dog" / "whole.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(whole, "JPEG")
    (root / "dog" / "cut.jpg").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    data = task(root).load()
    assert len(data.train) + len(data.test) == 9
    assert "skipped 1 file(s) unreadable: dog/cut.jpg" in warnings_of(data)


def test_sixteen_bit_cmyk_and_palette_images_are_converted_correctly(tmp_path):
    root = tmp_path / "photos"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))  # dark left, bright right
    Image.fromarray(ramp).save(root / "cat" / "deep.png")
    assert Image.open(root / "cat" / "deep.png").mode.startswith("I")
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(root / "cat" / "print.jpg", "JPEG", quality=95)  # red
    palette = Image.new("P", (32, 32))
    palette.putpalette([0, 0, 255] + [0] * 765)  # index 0 = blue
    palette.save(root / "dog" / "indexed.png")
    palette.save(root / "dog" / "indexed.gif")
    data = task(root, image_size=16, test_size=1).load()
    images = {int(y): [] for y in (0, 1)}
    for x, y in zip(list(data.train.x) + list(data.test.x), list(data.train.y) + list(data.test.y)):
        images[int(y)].append(x.numpy().astype(int))
    deep = next(x for x in images[0] if np.ptp(x[0]) > 0)  # the ramp (the red square is flat)
    assert deep[0, :, 0].mean() < 20 and deep[0, :, -1].mean() > 235  # scaled to 0..255, not clipped at 255
    assert (deep[0] == deep[1]).all() and (deep[1] == deep[2]).all()  # grey
    red = next(x for x in images[0] if np.ptp(x[0]) == 0)
    assert red[0].mean() > 200 and red[1].mean() < 40 and red[2].mean() < 40
    for blue in images[1]:
        assert blue[2].mean() > 200 and blue[0].mean() < 40 and blue[1].mean() < 40
    assert "16-bit grey" in warnings_of(data) and "CMYK" in warnings_of(data) and "palette (P)" in warnings_of(data)


def test_a_symlink_loop_inside_the_folder_is_skipped_and_counted(tmp_path):
    root = image_folder(tmp_path / "photos", {"cat": 4, "dog": 4})
    (root / "cat" / "again").symlink_to(root / "cat", target_is_directory=True)
    (root / "dog" / "up").symlink_to(root, target_is_directory=True)
    (root / "dog" / "up2").symlink_to(root, target_is_directory=True)  # two loops: 2^depth paths if followed
    data = task(root).load()
    assert len(data.train) + len(data.test) == 8  # each image once
    assert "skipped 3 file(s) symlink loop" in warnings_of(data)


def test_a_file_where_a_folder_was_expected(tmp_path):
    root = image_folder(tmp_path / "photos", {"cat": 4, "dog": 4})
    (root / "bird").write_bytes(b"a file named like a class")
    data = task(root).load()
    assert len(data.train) + len(data.test) == 8
    assert "outside any class folder: bird" in warnings_of(data)
    with pytest.raises(UserError, match="is not a folder"):
        task(root / "cat" / "000.png").load()
    train_as_file = image_folder(tmp_path / "split", {"cat": 3, "dog": 3})
    (train_as_file / "train").write_text("not a folder")
    data = task(train_as_file).load()  # 'train' is a file: the root's class folders are the layout
    assert "outside any class folder: train" in warnings_of(data)


# --- tables -----------------------------------------------------------------------------------------------------
def test_latin1_bytes_in_a_csv_are_read_and_counted(tmp_path):
    path = tmp_path / "t.csv"
    frame = table({"a": 5, "b": 5})
    frame.loc[0, "body"] = "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e"
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    data = text_task(path, text="body", label="queue").load()
    texts = list(data.train.x) + list(data.test.x)
    assert "café crème brûlée" in texts and len(texts) == 10
    assert "not valid UTF-8: read as Latin-1" in warnings_of(data)


def test_a_malformed_json_lines_row_is_skipped_and_counted(tmp_path):
    path = tmp_path / "t.jsonl"
    table({"a": 5, "b": 5}).to_json(path, orient="records", lines=True)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = '{"body": "broken, "queue": '
    lines.insert(5, "[1, 2, 3]")  # valid JSON, not a record
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = text_task(path, text="body", label="queue").load()
    assert len(data.train) + len(data.test) == 9
    assert "dropped 2 row(s): malformed JSON line (lines 4, 6)" in warnings_of(data)


@pytest.mark.parametrize("content", [b"", b"this is not parquet at all", b"PAR1" + b"\x00" * 64 + b"PAR1"])
def test_a_parquet_file_that_is_not_parquet_is_refused_in_one_line(tmp_path, content):
    path = tmp_path / "t.parquet"
    path.write_bytes(content)
    with pytest.raises(UserError, match=r"cannot read .*t.parquet as parquet") as err:
        _ = text_task(path, text="body", label="queue").metadata
    assert "\n" not in str(err.value)


def test_a_table_with_one_label_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    table({"only": 8}).to_csv(path, index=False)
    with pytest.raises(UserError, match=r"needs at least two classes, found 1 \('only'\)"):
        _ = text_task(path, text="body", label="queue").metadata


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl", "json", "parquet"])
def test_an_empty_file_is_refused_in_one_line(tmp_path, ext):
    path = tmp_path / f"t.{ext}"
    path.write_bytes(b"")
    with pytest.raises(UserError) as err:
        _ = text_task(path, text="body", label="queue").metadata
    assert "t." + ext in str(err.value) and "\n" not in str(err.value)


# --- through the command line -----------------------------------------------------------------------------------
def test_hostile_folders_and_tables_from_the_command_line(tmp_path, capsys):
    """A run over a hostile image folder finishes (the warning counts what was skipped); a hostile table stops the
    run with one line and exit 2 before anything is recorded."""
    from bench.cli.main import main

    root = image_folder(tmp_path / "photos", {"cat": 4, "dog": 4})
    bomb_png(root / "cat" / "huge.png", 16_000)
    (root / "dog" / "loop").symlink_to(root, target_is_directory=True)
    suite = {"name": "hostile", "tasks": [{"name": "my-photos", "kind": "image-folder", "path": str(root),
                                           "image_size": 16}],
             "backbones": ["test_efficientnet"], "strategies": ["from-scratch"],
             "params": {"epochs": 1, "batch_size": 4, "min_steps_per_epoch": 1, "val_size": 2}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(suite), encoding="utf-8")
    assert main(["run", str(tmp_path / "s.yaml"), "--results", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "too large to decode" in err and "symlink loop" in err and "Traceback" not in err

    (tmp_path / "t.parquet").write_bytes(b"nope")
    suite["tasks"] = [{"name": "my-tickets", "kind": "text-table", "path": str(tmp_path / "t.parquet")}]
    suite["backbones"] = ["glove-6b-50d"]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(suite), encoding="utf-8")
    assert main(["run", str(tmp_path / "s.yaml"), "--results", str(tmp_path / "out2")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cannot read" in lines[0], lines
    assert not (tmp_path / "out2").exists()
