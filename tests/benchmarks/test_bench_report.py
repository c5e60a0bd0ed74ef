"""Report rendering: ``report.render_html`` (tables, statistics, figures, template) on a synthetic results frame."""

from __future__ import annotations

import pytest

import report
from bench.results import to_frame
from report import synthetic
from tests.benchmarks import mean_seconds

pytestmark = pytest.mark.benchmark(group="report")


@pytest.fixture(scope="module")
def frame():
    # 2 tasks × 2 backbones × 5 strategies × 5 fractions × 3 seeds = 300 rows, every 97th a failed cell.
    rows = synthetic.sweep(tasks=2, backbones=2, seeds=3, error_every=97)
    return to_frame(rows)


def test_render_html(benchmark, frame):
    # No warm-up round: a render is seconds (matplotlib drawing is most of it) and the first is not slower.
    html = benchmark.pedantic(report.render_html, args=(frame,), rounds=3)

    assert html.lstrip().lower().startswith("<!doctype html") and "task-1" in html
    seconds = mean_seconds(benchmark)
    benchmark.extra_info.update({
        "rows": len(frame), "html_kb": round(len(html.encode()) / 1024, 1),
        "rows_per_s": round(len(frame) / seconds, 1) if seconds else None,
    })
