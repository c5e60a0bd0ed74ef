"""What the hyperparameter search costs beyond its cells: ``python -m bench.tools.search_bench``.

Runs the same cells twice, side by side, on the built-in ``digits`` task with timm's tiny ``test_efficientnet``:
once as a plain grid (``strategy_params: {from-scratch: {lr: [...]}}``) and once as a search over the same values
(``search: {sampler: grid, ...}``). The overhead per cell is the run's wall time minus the time the cells report
(``wall_time_s``), divided by the number of cells run: for the search that includes Optuna's bookkeeping, the
rounds (one wave per trial with the local executor) and the rebuilt plan.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.results import load_results, roles
from bench.runner import run_suite
from bench.plan.suite import parse_suite

LRS = [0.001, 0.003, 0.01, 0.03]


def _suite(search: bool) -> dict:
    base = {"name": "search-bench", "tasks": ["digits"], "backbones": ["test_efficientnet"],
            "strategies": ["from-scratch"], "seeds": [0], "fractions": [0.5],
            "params": {"epochs": 2, "image_size": 32, "batch_size": 32, "min_steps_per_epoch": 5}}
    if search:
        return base | {"search": {"sampler": "grid", "trials": len(LRS), "space": {"lr": LRS}}}
    return base | {"strategy_params": {"from-scratch": {"lr": LRS}}}


def overhead(search: bool) -> tuple[float, int]:
    """(seconds of run time per cell outside the cells themselves, cells run)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = run_suite(parse_suite(_suite(search)), Path(tmp))
        wall = time.perf_counter() - t0
        frame = load_results(tmp)
        ran = frame[frame["role"] != roles.FINAL] if search else frame  # the search's first-seed final is a copy
        return (wall - float(ran["wall_time_s"].sum())) / summary.ran, summary.ran


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    plain, searched = [], []
    overhead(False)  # warm-up: imports, the task's data and the model code are loaded once, outside the figures
    for _ in range(args.repeat):  # interleaved, so a busy machine slows both alike
        plain.append(overhead(False)[0])
        searched.append(overhead(True)[0])
    p, s = statistics.median(plain), statistics.median(searched)
    print(f"overhead per cell (median of {args.repeat}): plain grid {p:.3f}s, search {s:.3f}s, "
          f"search minus plain {s - p:+.3f}s per trial")


if __name__ == "__main__":
    main()
