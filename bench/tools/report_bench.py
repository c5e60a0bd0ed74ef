"""Time the report on a synthetic 1000-cell results set: ``python -m bench.tools.report_bench [--keep DIR]``.

Writes the cells as a runner would (one JSON file each, plus plan.json with 20 pending cells), then times
``build_report`` end to end (read, compute, draw, write HTML and CSVs) and ``render_html`` alone. The target
is ≤ 30 s on a 2-core machine; the figure drawing is most of it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from bench.results import load_results, write_row
from report import build_report, render_html, synthetic


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the results and report here instead of a temp dir")
    parser.add_argument("--repeat", type=int, default=1, help="time build_report this many times (best kept)")
    args = parser.parse_args(argv)
    rows = synthetic.sweep(error_every=97)  # 4 tasks × 2 backbones × 5 strategies × 5 fractions × 5 seeds
    with tempfile.TemporaryDirectory() as tmp:
        results = args.keep or Path(tmp)
        results.mkdir(parents=True, exist_ok=True)
        for row in rows:
            write_row(results, row)
        plan = [r["cell"] for r in rows] + [f"pending{i}" for i in range(20)]
        (results / "plan.json").write_text(json.dumps({"suite": "synthetic", "cells": plan}), encoding="utf-8")
        builds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            out = build_report(results)
            builds.append(time.perf_counter() - start)
        frame = load_results(results)
        start = time.perf_counter()
        render_html(frame)
        render = time.perf_counter() - start
        size_mb = out.stat().st_size / 1e6
    summary = {"rows": len(rows), "build_report_s": round(min(builds), 2), "render_html_s": round(render, 2),
               "html_mb": round(size_mb, 2), "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
               "python": platform.python_version()}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
