"""Regret of ``transferbench advise`` against a full matrix (bench/PERF.md), per task × label fraction:

    python -m bench.tools.advise_regret results/quick --out results/advise-regret [--share 0.25] [--only TASK ...]

For every task × backbone × fraction group of the matrix's results directory:

1. **Export** the labelled data the matrix's seed-0 cells had, as advise's train side: the official training
   split's stratified validation cut (``val_size`` of the cells' params) plus the label-fraction draw from the rest
   (``bench.core.splits.make_splits``, the very indices the cells used); and, as advise's held-out test side, a
   further seeded stratified draw from the remaining training samples, a quarter of that size (20 % of what is
   exported). A vision task is written as ``train/<class>/`` and ``test/<class>/`` PNG folders at the suite's image
   size (``image_size`` of the cells), a text task as a CSV with columns ``text``, ``label`` (class names) and
   ``split`` (``train`` / ``test``). Nothing comes from the official test split, which the matrix scores on.
   Advise cuts its own validation set from the train side (its default, 15 %), as it would on a user's data.
2. **Advise** (``python -m bench.cli advise``, as a user runs it, on the CPU, without the HTML report) restricted
   to the group's backbone and strategies, at the suite's image size, with a budget of ``share`` (default a quarter)
   of the group's matrix time: the sum of ``wall_time_s`` over its cells (search trials, finals, failed cells), a
   final copied from its search trial counted once.
3. **Regret** = the best strategy's mean final test score in the group (main metric, mean over seeds) minus the
   mean final test score of the strategy advise picked, both read on the matrix (its official test subset), in
   points (× 100).

Each group's advise run keeps its folder under ``--out`` (rerunning resumes; a finished one is read back).
The table is printed and written as ``regret.csv`` and ``regret.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.errors import UserError
from bench.core.splits import make_splits, stratified_take
from bench.results import load_results
from bench.results.roles import final_only, roles
from bench.plan import registry

__all__ = ["Group", "groups", "matrix_time_s", "regret_table", "main"]

HOLDOUT_SHARE = 0.25  # extra samples for advise's held-out test, per exported train+val sample (20 % of the export)
GROUP_KEYS = ["task", "backbone", "fraction"]


@dataclass(frozen=True)
class Group:
    """One matrix group: what advise is asked about, and at what budget."""

    task: str
    backbone: str
    fraction: float
    strategies: tuple[str, ...]
    params: dict[str, Any]
    matrix_s: float
    cells: int

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9-]+", "-", f"{self.task}-{self.backbone}-f{self.fraction:g}".lower())


# --- reading the matrix --------------------------------------------------------------------------------------
def matrix_time_s(frame: pd.DataFrame) -> float:
    """Wall time the matrix spent on ``frame``'s cells: every row's ``wall_time_s`` (search trials, finals, errors),
    except a final that is a copy of its own search trial (same seed, same start: the run was not repeated)."""
    started = dict(zip(frame["cell"], frame.get("started_at", pd.Series(None, index=frame.index))))
    role = roles(frame)
    total = 0.0
    for i, row in frame.iterrows():
        source = row.get("selected_from")
        copied = role[i] == "final" and isinstance(source, str) and source in started and \
            started[source] is not None and started[source] == row.get("started_at")
        if not copied:
            total += float(row.get("wall_time_s") or 0.0)
    return total


def groups(frame: pd.DataFrame) -> list[Group]:
    """The matrix's task × backbone × fraction groups, with their strategies, cell parameters and wall time."""
    out = []
    for (task, backbone, fraction), part in frame.groupby(GROUP_KEYS, sort=True):
        first = part["params"].iloc[0]  # split sizes and image size are shared by the group's cells
        params = json.loads(first) if isinstance(first, str) else dict(first)
        out.append(Group(str(task), str(backbone), float(fraction), tuple(dict.fromkeys(part["strategy"])), params,
                         matrix_time_s(part), len(part)))
    return out


def regret_table(frame: pd.DataFrame, picks: dict[tuple[str, str, float], str]) -> pd.DataFrame:
    """Per group with a pick: the matrix's best strategy and score, the pick's score and the regret (points).

    Scores are the mean over seeds of the group's main metric on ``ok`` final rows. A pick the matrix has no
    score for has regret NaN (it is reported, not dropped).
    """
    rows = []
    finals = final_only(frame)
    finals = finals[finals["status"] == "ok"]
    for (task, backbone, fraction), part in finals.groupby(GROUP_KEYS, sort=True):
        pick = picks.get((str(task), str(backbone), float(fraction)))
        if pick is None:
            continue
        metric = str(part["main_metric"].iloc[0])
        scores = part.groupby("strategy")[metric].mean()
        best = str(scores.idxmax())
        picked = float(scores[pick]) if pick in scores.index else float("nan")
        rows.append({"task": task, "backbone": backbone, "fraction": float(fraction), "metric": metric,
                     "pick": pick, "pick_score": picked, "best": best, "best_score": float(scores[best]),
                     "regret_points": 100 * (float(scores[best]) - picked),
                     "seeds": int(part.groupby("strategy")["seed"].nunique().min())})
    return pd.DataFrame(rows)


# --- exporting the labelled data -----------------------------------------------------------------------------
def _indices(group: Group, task) -> tuple[np.ndarray, np.ndarray, int]:
    """Official-train indices: the seed-0 cells' labelled data (validation cut ∪ label draw), the held-out extra
    drawn from the rest, and the validation count."""
    data = task.load()
    splits = make_splits(data.train.y, data.test.y, 0, group.fraction, group.params.get("val_size", 0.1),
                         group.params.get("test_limit"))
    labelled = np.sort(np.concatenate([splits.train, splits.val]))
    rest = np.setdiff1d(np.arange(len(data.train.y)), labelled)
    extra = int(round(len(labelled) * HOLDOUT_SHARE))
    held, _ = stratified_take(np.asarray(data.train.y)[rest], extra, np.random.default_rng([0, 11]))
    return labelled, np.sort(rest[held]), len(splits.val)


def export(group: Group, where: Path) -> tuple[Path, int, int]:
    """Write the group's data under ``where`` with an explicit train / test side (the own-data layouts: ``train/``
    and ``test/`` folders, a ``split`` column), so advise trains and validates on exactly the samples the matrix's
    seed-0 cells had; return (path, samples written, validation count)."""
    task = registry.get("task", group.task)
    labelled, held, n_val = _indices(group, task)
    sides = [("train", i) for i in labelled] + [("test", i) for i in held]
    data = task.load()
    classes = list(task.metadata.classes)
    y = np.asarray(data.train.y)
    if isinstance(data.train.x, list):
        path = where / f"{group.task}-export.csv"  # a built-in task's name is taken
        if not path.exists():
            frame = pd.DataFrame({"text": [data.train.x[i] for _, i in sides],
                                  "label": [classes[int(y[i])] for _, i in sides], "split": [s for s, _ in sides]})
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path.with_suffix(".tmp"), index=False)
            path.with_suffix(".tmp").rename(path)
        return path, len(sides), n_val
    from PIL import Image

    path = where / f"{group.task}-export"
    if not path.exists():
        size = int(group.params.get("image_size", 48))
        tmp = where / f"{group.task}.tmp"
        names = [re.sub(r"[^A-Za-z0-9-]+", "-", c).strip("-").lower() for c in classes]
        for side, i in sides:
            pixels = np.asarray(data.train.x[i]).squeeze()
            if pixels.ndim == 3:  # channels first → last
                pixels = np.moveaxis(pixels, 0, -1)
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            target = tmp / side / names[int(y[i])] / f"{int(i):05d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            image.resize((size, size), Image.BICUBIC).save(target)
        tmp.rename(path)
    return path, len(sides), n_val


# --- advising ------------------------------------------------------------------------------------------------
def advise_command(group: Group, data_path: Path, folder: Path, budget_s: float) -> list[str]:
    """The ``transferbench advise`` command line for a group (run as ``python -m bench.cli``, as a user would:
    ``bench.tools`` and ``bench.advise`` are sibling layers, so the tool does not import it)."""
    text = ["--text", "text", "--label", "label"] if data_path.suffix == ".csv" else \
        ["--image-size", str(int(group.params.get("image_size", 48)))]
    return [sys.executable, "-m", "bench.cli", "advise", str(data_path), "--budget", f"{budget_s:.0f}s",
            "--backbones", group.backbone, "--strategies", *group.strategies, "--results", str(folder),
            "--device", "cpu", "--no-report", *text]


def run_advise(group: Group, out: Path, share: float) -> dict[str, Any]:
    """Export the group's data, run advise on it at ``share`` of the matrix's time; return what it picked."""
    data_path, n, n_val = export(group, out / "data" / f"f{group.fraction:g}")
    budget_s = group.matrix_s * share
    folder = out / group.slug
    advice = folder / "advice.json"
    command = advise_command(group, data_path, folder, budget_s)
    if not advice.exists():
        print(" ".join(command[1:]), file=sys.stderr, flush=True)
        done = subprocess.run(command, check=False)
        if done.returncode != 0 or not advice.exists():
            return {"pick": None, "budget_s": budget_s, "matrix_s": group.matrix_s, "exported": n,
                    "answer": f"advise failed (exit {done.returncode})"}
    doc = json.loads(advice.read_text())
    best = next((c for c in doc["candidates"] if c.get("best")), None)
    return {"pick": best["strategy"] if best else None, "pick_params": best["params"] if best else None,
            "advise_val": best["val_mean"] if best else None, "advise_heldout": best["test_mean"] if best else None,
            "budget_s": budget_s, "spent_s": doc["spent_s"], "matrix_s": group.matrix_s, "exported": n,
            "matrix_val_size": n_val, "answer": doc["answer"], "command": " ".join(command[1:])}


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (pandas' ``to_markdown`` needs tabulate, which the project does not install)."""
    def cell(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrix", type=Path, help="the matrix's results directory")
    parser.add_argument("--out", type=Path, default=Path("results/advise-regret"))
    parser.add_argument("--share", type=float, default=0.25, help="advise's budget as a share of the group's time")
    parser.add_argument("--only", nargs="*", default=None, help="tasks to include (default: all)")
    parser.add_argument("--fractions", nargs="*", type=float, default=None, help="fractions (default: all)")
    args = parser.parse_args(argv)
    try:
        frame = load_results(args.matrix)
    except UserError as err:
        sys.exit(print(err, file=sys.stderr) or 2)
    runs = {}
    for group in groups(frame):
        if (args.only and group.task not in args.only) or (args.fractions and group.fraction not in args.fractions):
            continue
        print(f"{group.slug}: {group.cells} cells, matrix {group.matrix_s:.0f} s, advise budget "
              f"{group.matrix_s * args.share:.0f} s", file=sys.stderr, flush=True)
        runs[(group.task, group.backbone, group.fraction)] = run_advise(group, args.out, args.share)
    table = regret_table(frame, {k: v["pick"] for k, v in runs.items() if v["pick"]})
    extra = pd.DataFrame([{"task": k[0], "backbone": k[1], "fraction": k[2], **v} for k, v in runs.items()])
    table = table.merge(extra.drop(columns=["pick"]), on=GROUP_KEYS, how="right") if len(extra) else table
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "regret.csv", index=False)
    columns = ["task", "backbone", "fraction", "metric", "matrix_s", "budget_s", "spent_s", "pick", "pick_score",
               "best", "best_score", "regret_points"]
    shown = table[[c for c in columns if c in table.columns]]
    (args.out / "regret.md").write_text(markdown(shown))
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    within = int((table["regret_points"] <= 1.0).sum()) if len(table) else 0
    print(f"within 1 point of the matrix's best: {within} of {len(table)} group(s)")


if __name__ == "__main__":
    main()
