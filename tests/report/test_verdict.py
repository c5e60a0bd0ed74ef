"""The verdict: per-group rankings with honest significance, rank tests across groups, sentences, summary, page."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import report
from report import summary, verdict
from report.sections.verdict import cd_figure

STRATEGIES = ("from-scratch", "feature-extraction", "partial-freeze", "full-fine-tune")


def results(means: dict[str, float], *, tasks: int = 3, backbones: int = 2, fractions=(0.1,), seeds: int = 5,
            sd: float = 0.02, rng_seed: int = 0, **extra) -> pd.DataFrame:
    """Final rows: every strategy's accuracy ~ Normal(means[strategy], sd), one row per group × seed."""
    rng = np.random.default_rng(rng_seed)
    rows = [{"task": f"task-{t}", "backbone": f"bb-{b}", "strategy": s, "seed": seed, "fraction": f,
             "status": "ok", "accuracy": float(rng.normal(mean, sd)), "main_metric": "accuracy",
             "wall_time_s": 10.0 * (i + 1), "role": "final", **extra}
            for t in range(tasks) for b in range(backbones) for f in fractions
            for i, (s, mean) in enumerate(means.items()) for seed in range(seeds)]
    return pd.DataFrame(rows)


def claims(v: verdict.Verdict) -> list[str]:
    return [line for line in v.sentences if "significant" in line]


def test_known_winner_is_first_everywhere_and_significant():
    means = dict.fromkeys(STRATEGIES, 0.70) | {"partial-freeze": 0.80}
    v = verdict.compute_verdict(results(means))
    assert len(v.groups) == 6
    assert all(g.best == "partial-freeze" and g.status == "decided" and g.lead_significant for g in v.groups)
    assert all(r.cost_ratio == pytest.approx(r.wall_time_s / 30.0) for g in v.groups for r in g.results)
    test = v.friedman[0.1]
    assert test.test == "Friedman" and test.blocks == 6 and test.p < 0.05
    assert test.mean_ranks["partial-freeze"] == 1.0 and v.ranks.loc["partial-freeze", "10 % labels"] == 1.0
    assert test.nemenyi is not None and test.cd == pytest.approx(2.569 * math.sqrt(4 * 5 / (6 * 6)), rel=1e-3)
    assert any("partial-freeze ranks first in 6 of 6 groups" in s and "is significant in 6" in s
               for s in v.sentences)


def test_pure_noise_claims_nothing():
    means = dict.fromkeys(STRATEGIES, 0.70)
    friedman_hits = 0
    for rng_seed in range(5):
        v = verdict.compute_verdict(results(means, fractions=(0.05, 0.5), seeds=10, rng_seed=rng_seed))
        # per-group leads: chance alone never adds up to a claimed lead
        assert not [s for s in v.sentences if "is significant in" in s], v.sentences
        friedman_hits += sum(t.significant for t in v.friedman.values())
        if rng_seed == 0:
            assert claims(v) == [], v.sentences
    assert friedman_hits <= 2  # 10 tests at 5 %: expect 0.5


def test_one_seed_is_undecided():
    v = verdict.compute_verdict(results({"from-scratch": 0.5, "full-fine-tune": 0.9}, seeds=1, fractions=(0.005,)))
    assert {g.status for g in v.groups} == {"undecided"}
    assert all(r.significant is None and math.isnan(r.p) for g in v.groups for r in g.results)
    assert ("With one seed per strategy and neither per-example predictions nor the test size, nothing can be "
            "decided at 0.5 % labels; run at least two seeds.") \
        in v.sentences
    assert claims(v) == []


def test_fewer_than_three_groups_is_not_tested():
    means = dict.fromkeys(STRATEGIES, 0.70) | {"partial-freeze": 0.80}
    v = verdict.compute_verdict(results(means, tasks=1, backbones=2))
    test = v.friedman[0.1]
    assert not test.tested and "not enough groups to test" in test.reason and test.blocks == 2
    assert any("not enough groups to test" in s for s in v.sentences)
    assert cd_figure(v) is None


def test_two_strategies_use_the_sign_test():
    v = verdict.compute_verdict(results({"from-scratch": 0.6, "full-fine-tune": 0.8}, tasks=4))
    test = v.friedman[0.1]
    assert test.test == "sign test" and test.statistic == 0 and test.p == pytest.approx(2 * 0.5**8)


def test_only_final_rows_count_and_no_role_means_final():
    means = {"from-scratch": 0.6, "full-fine-tune": 0.8}
    frame = results(means)
    search = results({"from-scratch": 0.99}, role="search")
    v = verdict.compute_verdict(pd.concat([frame, search], ignore_index=True))
    assert all(g.best == "full-fine-tune" for g in v.groups)
    bare = verdict.compute_verdict(frame.drop(columns="role"))
    assert [g.best for g in bare.groups] == [g.best for g in v.groups]
    failed = frame.assign(status="error")
    assert verdict.compute_verdict(failed).groups == []


def test_main_metric_is_used():
    frame = results({"from-scratch": 0.6, "full-fine-tune": 0.8}, main_metric="macro_f1")
    frame["macro_f1"] = 1 - frame["accuracy"]  # the ranking flips if macro-F1 is read
    assert {g.best for g in verdict.compute_verdict(frame).groups} == {"from-scratch"}


def test_holm_step_down():
    assert verdict.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = verdict.holm([math.nan, 0.02, 0.9])
    assert math.isnan(out[0]) and out[1:] == pytest.approx([0.04, 0.9])


def test_summary_prints_the_winner():
    means = dict.fromkeys(STRATEGIES, 0.70) | {"feature-extraction": 0.80}
    buffer = io.StringIO()
    v = summary.print_summary(results(means), Console(file=buffer, width=160))
    text = buffer.getvalue()
    assert "feature-extraction ranks first in 6 of 6 groups" in text
    assert "task-2 · bb-1 · 10 % labels (accuracy)" in text and "Average rank" in text
    assert re.search(r"feature-extraction\s+│\s+1\.00", text) and len(claims(v)) >= 1


def test_page_opens_with_the_verdict():
    means = dict.fromkeys(STRATEGIES, 0.70) | {"full-fine-tune": 0.80}
    page = report.render_html(results(means))
    sections = [m.start() for m in re.finditer(r"<section id=", page)]
    assert page.index('<section id="verdict">') == sections[0] and len(sections) > 5
    verdict_html = page[sections[0]:sections[1]]
    assert "full-fine-tune ranks first in 6 of 6 groups" in verdict_html
    assert 'id="verdict-ranking"' in verdict_html and 'id="verdict-ranks"' in verdict_html
    assert 'alt="Critical-difference diagram' in verdict_html and "data:image/png;base64," in verdict_html


def test_hostile_strategy_names_are_escaped_in_the_verdict():
    page = report.render_html(results({"<b>x</b>": 0.6, "full-fine-tune": 0.8}, tasks=2))
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
