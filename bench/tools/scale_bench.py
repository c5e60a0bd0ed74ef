"""Executor benchmark: the same tiny suite run with ``local``, ``process`` and ``ray``; overhead per cell, speed-up.

Usage::

    python -m bench.tools.scale_bench --cells 40 --workers 2 --executors local process ray [--json out.json]

Each executor runs the whole suite from scratch through the real command (``transferbench run``, a fresh
process and an empty results directory), so start-up costs (imports, Ray, worker processes) count for each.
Figures:

- wall: seconds of the whole command;
- cell time: the sum of the cells' own ``wall_time_s`` as recorded in their rows;
- overhead per cell: ``(wall x parallel slots - cell time) / cells``, the slot-seconds per cell spent outside
  cells (start-up, dispatch, moving rows, writing results); for ``local`` there is one slot;
- speed-up: ``local wall / executor wall``;
- CPU time: user + system seconds of the command and the processes it waited for (workers; Ray's own processes
  only in part), to read the wall times against when other jobs share the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def tiny_suite(cells: int) -> dict:
    """``cells`` cheap CPU-bound cells: 8x8 digits, timm's tiny test_efficientnet from scratch, 1 epoch, 16 px."""
    if cells % 2:
        raise SystemExit("--cells must be even (two label fractions per seed)")
    return {"name": "scale-bench", "tasks": ["digits"], "backbones": ["test_efficientnet"],
            "strategies": ["from-scratch"], "seeds": list(range(cells // 2)), "fractions": [0.2, 0.5],
            "params": {"image_size": 16, "epochs": 1, "batch_size": 32, "min_steps_per_epoch": 1}}


def run_one(executor: str, workers: int, suite_file: Path, out: Path) -> dict:
    """``local-1thread`` is ``local`` with torch on one thread, as each pool or Ray worker runs: it separates what
    the executor brings from what the thread count brings (tiny models scale badly over threads)."""
    kind, env = executor, os.environ | {"CI": "1"}
    if executor == "local-1thread":
        kind, env = "local", env | {"OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bench.cli", "run", str(suite_file), "--results", str(out), "--executor", kind]
    if kind != "local":
        cmd += ["--workers", str(workers)]
    cpu0, t0 = _children_cpu_s(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - t0, _children_cpu_s() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{executor} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    rows = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    failed = [r["error"] for r in rows if r["status"] != "ok"]
    if failed:
        raise SystemExit(f"{executor}: {len(failed)} cell(s) failed, e.g. {failed[0]}")
    slots = 1 if kind == "local" else workers
    cell_time = sum(r["wall_time_s"] for r in rows)
    return {"executor": executor, "workers": slots, "cells": len(rows), "wall_s": wall, "cell_time_s": cell_time,
            "overhead_per_cell_s": (wall * slots - cell_time) / len(rows), "cpu_s": cpu}


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of finished child processes and the descendants they waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def table(results: list[dict]) -> str:
    local = next((r["wall_s"] for r in results if r["executor"] == "local"), None)
    lines = ["| executor | workers | cells | wall (s) | sum of cell times (s) | overhead per cell (s) "
             "| speed-up vs local | CPU time (s) |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        speed = f"{local / r['wall_s']:.2f}x" if local else "n/a"
        lines.append(f"| {r['executor']} | {r['workers']} | {r['cells']} | {r['wall_s']:.1f} | {r['cell_time_s']:.1f} "
                     f"| {r['overhead_per_cell_s']:.2f} | {speed} | {r.get('cpu_s', float('nan')):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executors", nargs="+", default=["local", "process", "ray"],
                        choices=["local", "local-1thread", "process", "ray"])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="tb-scale-") as tmp:
        suite_file = Path(tmp) / "scale-bench.yaml"
        suite_file.write_text(yaml.safe_dump(tiny_suite(args.cells)))
        for executor in args.executors:
            load = os.getloadavg()[0]
            result = run_one(executor, args.workers, suite_file, Path(tmp) / f"results-{executor}")
            result["load_avg_before"] = load
            results.append(result)
            print(f"{executor}: {result['wall_s']:.1f}s (load average before: {load:.1f})", file=sys.stderr)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
