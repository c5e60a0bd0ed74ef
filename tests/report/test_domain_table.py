"""The domain adaptation table from synthetic result rows (no training)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from report.domain import domain_table
from report.sections.domain import html_tables


def _rows():
    rows = []
    scores = {"source-only": [0.60, 0.62, 0.61], "dann": [0.80, 0.82, 0.78], "from-scratch": [0.50, 0.55, 0.52]}
    for strategy, values in scores.items():
        for seed, value in enumerate(values):
            params = {"source": "mnist", "target_labels": True} if strategy != "from-scratch" else {}
            rows.append({"task": "digits", "source_task": params.get("source"), "backbone": "resnet10t",
                         "strategy": strategy, "seed": seed, "fraction": 0.1, "status": "ok", "accuracy": value,
                         "main_metric": "accuracy", "params": json.dumps(params)})
    rows.append(dict(rows[3], params=json.dumps({"source": "mnist", "target_labels": False}), accuracy=0.7))
    rows.append(dict(rows[0], status="error", accuracy=None))
    return pd.DataFrame(rows)


def test_gain_over_source_only_and_unsupervised_variant():
    table = domain_table(_rows()).set_index("method")
    assert list(table.index) == ["dann", "dann (unsupervised)", "source-only", "from-scratch"]  # best first
    assert table.loc["dann", "gain"] == pytest.approx(0.19)
    assert table.loc["dann", "gain_low"] > 0  # clearly above the anchor
    assert table.loc["from-scratch", "gain"] < 0 and table.loc["source-only", "n"] == 3
    assert table.loc["dann (unsupervised)", "n"] == 1
    (shown,) = html_tables(domain_table(_rows()))
    assert shown.caption.startswith("mnist → digits") and any(c.text.startswith("+19.0") for row in shown.rows
                                                               for c in row)


def test_no_source_rows_no_section():
    rows = _rows()
    rows["source_task"] = None
    assert domain_table(rows).empty and html_tables(domain_table(rows)) == []


def test_domain_section_is_escaped_in_the_page():
    from report import render_html

    rows = _rows()
    rows["source_task"] = "<script>x</script>"
    page = render_html(rows)
    assert '<section id="domain">' in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_the_table_is_computed_once_and_exported():
    """report.tables.compute holds it (the page draws from there) and exports it as CSV."""
    from report import tables

    data = tables.compute(_rows())
    assert len(data.exports()["domain"]) > 0
