"""``advice.html``: the answer and every race trial and final run behind it, on one self-contained page that links
to the folder's ``report.html``. Pruned, failed and skipped trials are listed with their reason: nothing is
hidden. Every string is escaped.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from bench.advise.recommend import Recommendation, test_interval
from bench.infra.atomic import write_text

__all__ = ["write_evidence"]

STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
         "th{background:#f3f3f3}.pruned{color:#8a5a00}.error{color:#b00020}.answer{font-size:1.15em}")


def _num(value: Any, digits: int = 4) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{value:.{digits}f}" if math.isfinite(value) else ""


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{html.escape(classes[i])}"' if classes and classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _lr(row: dict[str, Any]) -> str:
    params = row.get("params")
    params = json.loads(params) if isinstance(params, str) else params or {}
    return f"{params['lr']:g}" if "lr" in params else ""


def write_evidence(out: Path, answer: str, notes: list[str], rec: Recommendation | None,
                   race_rows: list[dict[str, Any]], budget_line: str) -> Path:
    """Write ``out/advice.html`` and return its path."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>transferbench advise</title><style>{STYLE}</style>",
             "<h1>transferbench advise</h1>", f"<p class='answer'>{html.escape(answer)}</p>",
             "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in [*notes, budget_line]) + "</ul>",
             "<p>Selection reads validation only; held-out scores are reported for the chosen configurations. "
             "The full report of this folder: <a href='report.html'>report.html</a>.</p>"]
    if rec:
        rows, classes = [], []
        for c in rec.ranked:
            test = test_interval(c)
            noise = rec.noise.get(c.label)
            verdict = "best" if c is rec.best else ("within noise" if noise and noise.within else "below")
            rows.append([c.label, len(c.rows), _num(sum(c.val()) / len(c.val())), _num(test.mean),
                         f"[{_num(test.low, 3)}, {_num(test.high, 3)}]", _num(c.cost_s, 1), verdict,
                         noise.method if noise else ""])
            classes.append("")
        parts += ["<h2>Finalists</h2>", _table(["configuration", "seeds", "validation (mean)", "held-out (mean)",
                                                "95 % interval", "cost per run (s)", "vs best", "noise judged by"],
                                               rows, classes)]
    rows, classes = [], []
    for r in race_rows:
        metric = r.get("main_metric") or "accuracy"
        rows.append([r.get("strategy"), r.get("backbone"), _lr(r), r.get("status"),
                     "" if r.get("fidelity") is None else f"{r['fidelity']} of {r.get('fidelity_max')}",
                     _num(r.get(f"val_{metric}")), _num(r.get("wall_time_s"), 1), r.get("error") or ""])
        classes.append(r.get("status") if r.get("status") in ("pruned", "error") else "")
    parts += ["<h2>Race trials (role race)</h2>",
              _table(["strategy", "backbone", "lr", "status", "epochs (fidelity)", "validation", "wall time (s)",
                      "why it stopped"], rows, classes)]
    path = out / "advice.html"
    write_text(path, "\n".join(parts) + "\n")
    return path
