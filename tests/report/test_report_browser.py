"""The report in a real browser: headless Chromium opens it from a file URL with no console errors.

Chromium logs every console message (errors, uncaught exceptions, blocked fetches under the page's
Content-Security-Policy) to stderr as ``...:CONSOLE...`` lines when run with ``--enable-logging=stderr``; the
report itself logs nothing, so any such line is a failure. A screenshot of the fixture report is kept in
tests/artifacts/ for people to look at. Skipped where Chromium is absent (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import report
from tests.helpers import fixtures_results as fx

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


CHROMIUM = _find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium not found (/usr/bin/chromium or on PATH); install it with "
                             "`apt-get install -y chromium` to run the browser check of the HTML report")


def chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on a file URL, offline and without a profile, and return its output."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([CHROMIUM, *flags, *args, page.resolve().as_uri()], capture_output=True, text=True,
                          timeout=180, check=False)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("results")
    fx.write_results(results, fx.small_mixed(), pending=3)
    return report.build_report(results)


def test_console_check_catches_a_broken_page(tmp_path):
    # guards the check itself: were Chromium to stop logging console errors, the next test would pass vacuously
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>notDefined();</script>", encoding="utf-8")
    done = chromium(page, tmp_path, "--dump-dom")
    assert any("notDefined" in m for m in console_messages(done.stderr)), done.stderr[-2000:]


def test_report_renders_without_console_errors(fixture_report, tmp_path):
    done = chromium(fixture_report, tmp_path, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_messages(done.stderr) == []
    dom = done.stdout
    assert 'id="leaderboard-1"' in dom and dom.count("<img") >= 4
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and fx.HOSTILE not in dom


def test_screenshot_is_saved(fixture_report, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report_screenshot.png"
    shot.unlink(missing_ok=True)
    done = chromium(fixture_report, tmp_path, f"--screenshot={shot}", "--window-size=1400,2000",
                    "--hide-scrollbars")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    assert console_messages(done.stderr) == []
    from matplotlib.image import imread  # reads PNG without Pillow

    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1400) and float(np.std(pixels)) > 0.05  # a page, not a blank canvas


def test_clicking_a_header_sorts_the_table(fixture_report, tmp_path):
    # A copy of the page with a click added at the end: the sorting script runs in the real browser.
    clicker = ("<script>var th = document.querySelector('#leaderboard-2 th:nth-child(5)');"
               "th.click(); th.click();</script></body>")
    page = tmp_path / "clicked.html"
    page.write_text(fixture_report.read_text(encoding="utf-8").replace("</body>", clicker), encoding="utf-8")
    done = chromium(page, tmp_path, "--dump-dom")
    assert console_messages(done.stderr) == []
    table = re.search(r'<table class="sortable" id="leaderboard-2">(.*?)</table>', done.stdout, re.DOTALL).group(1)
    assert 'aria-sort="descending"' in table
    keys = [cells[4] for cells in (re.findall(r'<td data-sort="([^"]*)"', row)
                                   for row in re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)) if len(cells) > 4]
    numbers = [float(k) for k in keys if k]
    assert len(numbers) >= 10 and numbers == sorted(numbers, reverse=True)
    assert not any(keys[len(numbers):])  # rows without a value sort last
