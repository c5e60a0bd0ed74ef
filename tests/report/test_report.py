"""The HTML report: content, escaping, self-containment, partial/odd results, CSV export, speed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import report
from bench.core.errors import UserError
from bench.results import consolidate, to_frame
from report import synthetic, tables
from tests.helpers import fixtures_results as fx

ROOT = Path(__file__).resolve().parents[2]


class Tags(HTMLParser):
    """Collects (tag, attributes) of every start tag and the page's visible text."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def of(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.tags if tag == name]


@pytest.fixture(scope="module")
def mixed_page() -> str:
    return report.render_html(fx.frame(fx.small_mixed()))


def test_render_is_pure(mixed_page):
    frame = fx.frame(fx.small_mixed())
    before = frame.copy()
    assert report.render_html(frame) == mixed_page
    pd.testing.assert_frame_equal(frame, before)


def test_user_strings_are_escaped(mixed_page):
    assert fx.HOSTILE not in mixed_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mixed_page
    assert len(Tags(mixed_page).of("script")) == 1  # only the page's own sorting script
    assert fx.HOSTILE in "".join(Tags(mixed_page).text)  # ...and the name still reads as text


def test_hostile_versions_and_errors_are_escaped():
    row = fx.make_row(curve=[0.5], versions=json.dumps({"<b>pkg": "<img src=x onerror=alert(1)>"}),
                      device="<iframe>")
    page = report.render_html(fx.frame([row, fx.make_row(seed=1, status="error", error="<img src=y>")]))
    parsed = Tags(page)
    assert not parsed.of("iframe") and all(a.get("src", "").startswith("data:image/png;base64,")
                                           for a in parsed.of("img"))
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;img src=y&gt;" in page


def test_page_is_self_contained_with_alt_text(mixed_page):
    parsed = Tags(mixed_page)
    images = parsed.of("img")
    assert len(images) >= 4
    assert all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert all(len(a.get("alt", "")) > 40 for a in images)
    assert not parsed.of("link") and not parsed.of("iframe")
    assert all(not a.get("src") for a in parsed.of("script"))
    for attrs in parsed.of("a"):
        assert not attrs["href"].lower().startswith(("http:", "https:", "//"))
    assert "@import" not in mixed_page and "url(" not in mixed_page


def test_page_has_every_section(mixed_page):
    for anchor in ("summary", "leaderboard", "transfer", "figures", "failures", "definitions", "export"):
        assert f'id="{anchor}"' in mixed_page
    for term in ("start", "slope", "asymptote", "time to threshold", "AULC", "negative transfer"):
        assert f"<dt>{term}</dt>" in mixed_page
    assert "CUDA out of memory" in mixed_page  # the failed cell's message
    assert "zero-shot: task has no class names" in mixed_page  # the skipped cell's reason
    assert "2 mixed" not in mixed_page and "(mixed code versions)" in mixed_page  # two git shas in the fixture


def test_transfer_numbers_reach_the_page():
    page = report.render_html(fx.frame(fx.issue_example()))
    assert "Δ +0.200 [+0.200, +0.200]" in page  # start 0.5 vs 0.3
    assert "Δ +0.000 [+0.000, +0.000]" in page  # equal asymptote 0.7


def test_single_seed_shows_n1_without_interval():
    # one seed and no test size: nothing to resample (the sub-line changed from "n=1, no interval" when the
    # intervals became bootstrap intervals over seeds × test examples, issue 17)
    rows = [fx.make_row(strategy="from-scratch", curve=[0.3, 0.6]),
            fx.make_row(strategy="full-fine-tune", curve=[0.5, 0.7])]
    page = report.render_html(fx.frame(rows))
    assert "1 seed, no interval" in page and "undecided" in page


def test_single_seed_with_a_test_size_still_gets_an_interval():
    rows = [fx.make_row(strategy=s, curve=c, n_test=500) for s, c in (("from-scratch", [0.3, 0.6]),
                                                                       ("full-fine-tune", [0.5, 0.7]))]
    page = report.render_html(fx.frame(rows))
    assert "1 seed × 500 test" in page and "binomial test model, 1 seed" in page
    assert "one seed, and no predictions or test size to resample" not in page


def test_missing_baseline_is_stated():
    rows = [fx.make_row(strategy="full-fine-tune", seed=s, curve=[0.5, 0.7]) for s in range(2)]
    assert "No from-scratch baseline in these results" in report.render_html(fx.frame(rows))


def test_only_error_rows():
    rows = [fx.make_row(seed=s, status="error", error=f"ValueError: broken {s}") for s in range(3)]
    page = report.render_html(fx.frame(rows))
    assert "ValueError: broken 2" in page and "No finished cells yet" in page
    assert "3 failed" in page


def test_zero_shot_only_and_empty_frames_render():
    rows = [fx.make_row(strategy="zero-shot", seed=s, curve=[], accuracy=0.4) for s in range(2)]
    page = report.render_html(fx.frame(rows))
    assert "zero-shot" in page and "Learning curves —" not in page
    empty = report.render_html(to_frame([]), {"planned": ["a", "b"]})
    assert "No cells recorded yet: all 2 planned cells are pending" in empty


ODD_FRAMES = {
    "hand-built, few columns": lambda: pd.DataFrame([
        {"task": "t", "strategy": "from-scratch", "status": "ok", "accuracy": 0.5, "seed": 0},
        {"task": "t", "strategy": "full-fine-tune", "status": "ok", "accuracy": 0.7, "seed": 0}]),
    "no columns at all": pd.DataFrame,
    "curve without values": lambda: fx.frame([
        fx.make_row(curve=[0.5, 0.6]),
        fx.make_row(seed=1, curve=[0.5]) | {"curve": json.dumps([{"epoch": 1, "val_accuracy": None}])}]),
    "damaged JSON text": lambda: fx.frame([fx.make_row(curve=[0.5]) | {"curve": "{oops", "versions": "[1, 2]"}]),
    "selected epoch past the curve": lambda: fx.frame([fx.make_row(curve=[0.5, 0.6], best_epoch=9)]),
    "no wall times": lambda: fx.frame([fx.make_row(curve=[0.5, 0.6], wall_time_s=None)]),
    "one label fraction, one seed": lambda: fx.frame([fx.make_row(curve=[0.5, 0.6], fraction=0.25)]),
}


@pytest.mark.parametrize("name", ODD_FRAMES)
def test_odd_results_render_without_errors_or_warnings(name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        page = report.render_html(ODD_FRAMES[name]())
    assert page.rstrip().endswith("</html>")
    assert [str(w.message) for w in caught] == []


def test_build_report_on_a_partial_run(tmp_path):
    rows = fx.small_mixed()
    fx.write_results(tmp_path, rows, pending=5)
    out = report.build_report(tmp_path)
    assert out == tmp_path / "report.html"
    page = out.read_text(encoding="utf-8")
    assert f"5 of {len(rows) + 5} planned cells are still pending" in page
    board = pd.read_csv(tmp_path / "report_leaderboard.csv")
    expected = tables.leaderboard(tables.normalize(fx.frame(rows)))
    assert len(board) == len(expected)
    pd.testing.assert_series_equal(board["accuracy_mean"], expected["accuracy_mean"], check_exact=False)
    failures = pd.read_csv(tmp_path / "report_failures.csv")
    assert set(failures["status"]) == {"error", "skipped"} and failures["error"].str.contains("out of memory").any()
    for name in ("transfer_metrics", "learning_curves"):
        assert f'href="report_{name}.csv"' in page and (tmp_path / f"report_{name}.csv").is_file()


def test_build_report_custom_output_and_single_file_input(tmp_path):
    fx.write_results(tmp_path / "res", fx.issue_example())
    consolidate(tmp_path / "res")
    out = report.build_report(tmp_path / "res" / "results.csv", tmp_path / "out" / "summary.html")
    assert out.is_file() and (tmp_path / "out" / "summary_leaderboard.csv").is_file()
    assert "full-fine-tune" in out.read_text(encoding="utf-8")


def test_build_report_with_only_a_plan(tmp_path):
    fx.write_results(tmp_path, [], pending=4)
    page = report.build_report(tmp_path).read_text(encoding="utf-8")
    assert "all 4 planned cells are pending" in page


def test_build_report_notes_damaged_files_and_bad_plan(tmp_path):
    fx.write_results(tmp_path, fx.issue_example(seeds=1))
    (tmp_path / "cells" / "deadbeef.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "plan.json").write_text("[1, 2", encoding="utf-8")
    with pytest.warns(UserWarning, match="damaged"):
        page = report.build_report(tmp_path).read_text(encoding="utf-8")
    assert "deadbeef.json" in page and "plan.json is unreadable" in page and "unknown pending" in page


def test_build_report_rejects_missing_or_foreign_directories(tmp_path):
    with pytest.raises(UserError, match="not found"):
        report.build_report(tmp_path / "nope")
    with pytest.raises(UserError, match="not a results directory"):
        report.build_report(tmp_path)


def test_report_never_imports_torch(tmp_path):
    fx.write_results(tmp_path, fx.issue_example(seeds=2))
    code = ("import sys, report; report.build_report(sys.argv[1]); "
            "bad = [m for m in ('torch', 'timm', 'transformers') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.benchmark
def test_1000_row_report_within_30_seconds(tmp_path):
    rows = synthetic.sweep(error_every=97)
    assert len(rows) == 1000
    fx.write_results(tmp_path, rows, pending=20)
    start = time.perf_counter()
    report.build_report(tmp_path)
    elapsed = time.perf_counter() - start
    print(f"1000-row report: {elapsed:.1f} s")
    assert elapsed <= 30
