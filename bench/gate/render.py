"""Rendering of a regression-gate result: the terminal table (rich) and the Markdown pull-request comment."""

from __future__ import annotations

import math
from typing import Any

from bench.gate.check import (FASTER, FEW_SEEDS, IMPROVED, NO_DATA, NOISE, OK, ORDER, REGRESSION, SLOWER, CheckConfig,
                         CheckResult, Comparison, Note)

HEADERS = ("cell group", "seeds b/n", "baseline %", "new %", "Δ pts", "p", "time ×", "p time", "verdict")


def _pct(mean: float, sd: float) -> str:
    return f"{100 * mean:.2f}" + (f" ± {100 * sd:.2f}" if math.isfinite(sd) else "")


def _p(p: float) -> str:
    return "—" if math.isnan(p) else f"{p:.3g}"


def _row(c: Comparison) -> tuple[str, ...]:
    worst = c.status if ORDER[c.status] <= ORDER[c.time_status] else c.time_status
    verdict = ", ".join(dict.fromkeys(s for s in (c.status, c.time_status) if s not in (OK, NO_DATA))) or OK
    if worst == FEW_SEEDS:
        verdict += " (one seed on a side: no test)"
    ratio = "—" if math.isnan(c.time_ratio) else f"{c.time_ratio:.2f}"
    return (c.label, f"{c.n_base}/{c.n_new}", _pct(c.base_mean, c.base_sd), _pct(c.new_mean, c.new_sd),
            f"{100 * c.delta:+.2f}", _p(c.p_drop), ratio, _p(c.p_slow), verdict)


def _failing(c: Comparison) -> bool:
    return c.status == REGRESSION or c.time_status == SLOWER


def settings_line(config: CheckConfig) -> str:
    time = (f"{config.time_metric} > ×{config.time_ratio:g} and +{config.min_time_delta_s:g} s"
            if config.time_metric else "time not checked")
    holm = " (Holm-adjusted over groups)" if config.correction == "holm" else ""
    also = f"; also fails on {', '.join(config.fail_on)}" if config.fail_on else ""
    return (f"fails on {config.metric} drop > {100 * config.tolerance:g} pts, {time}; "
            f"both need one-sided {config.test} p < {config.alpha:g}{holm}{also}")


def verdict_line(result: CheckResult) -> str:
    n = len(result.comparisons)
    failures = result.failures()
    if failures:
        return f"FAIL: {'; '.join(failures)} (of {n} cell groups compared)"
    return f"PASS: no significant regression in {n} cell groups"


def _notes_sections(result: CheckResult) -> list[tuple[str, list[Note]]]:
    return [("Missing cell groups (in the baseline, not measured now)", result.missing),
            ("New cell groups (not in the baseline)", result.new),
            ("Error rows", result.errors)]


def render_markdown(result: CheckResult) -> str:
    """A pull-request comment: verdict, environment warnings, failing groups, then everything in <details>."""
    def table(rows: list[Comparison]) -> list[str]:
        escape = str.maketrans({"|": "\\|"})
        return (["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
                + ["| " + " | ".join(cell.translate(escape) for cell in _row(c)) + " |" for c in rows])

    mark = ":x:" if result.exit_code else ":white_check_mark:"
    lines = [f"## {mark} transferbench check", "", f"**{verdict_line(result)}**", "", settings_line(result.config)]
    if any(result.shas):
        lines += ["", f"baseline commit `{result.shas[0] or '?'}`, results commit `{result.shas[1] or '?'}`"]
    if result.environment:
        warning = "> **The baseline was measured in a different environment**; differences may come from it."
        lines += ["", "> [!WARNING]", warning, *[f"> - {w}" for w in result.environment]]
    failing = [c for c in result.comparisons if _failing(c)]
    if failing:
        lines += ["", "### Regressions", "", *table(failing)]
    if result.comparisons:
        lines += ["", f"<details><summary>All {len(result.comparisons)} compared cell groups</summary>", "",
                  *table(result.comparisons), "", "</details>"]
    for title, notes in _notes_sections(result):
        if notes:
            lines += ["", f"### {title}: {len(notes)}", "", *[f"- {n.label} — {n.detail}" for n in notes]]
    adjusted = ", Holm-adjusted" if result.config.correction == "holm" else ""
    legend = ("Accuracy in %, mean ± sd over seeds; Δ in accuracy points; time × = mean new / mean baseline; "
              f"p: one-sided ({result.config.test}{adjusted}). See docs/CHECK.md.")
    lines += ["", legend]
    return "\n".join(lines) + "\n"


def render_terminal(result: CheckResult, console: Any = None, quiet: bool = False) -> None:
    """Print the comparison with rich; ``quiet`` keeps the verdict, warnings and failing groups only."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    for warning in result.environment:
        console.print(f"[bold red]WARNING: baseline from a different environment: {escape(warning)}[/]")
    rows = [c for c in result.comparisons if not quiet or _failing(c)]
    if rows:
        tab = Table(*HEADERS, show_lines=False, header_style="bold")
        styles = {REGRESSION: "bold red", SLOWER: "bold red", NOISE: "yellow", FEW_SEEDS: "yellow",
                  IMPROVED: "green", FASTER: "green"}
        for c in rows:
            worst = c.status if ORDER[c.status] <= ORDER[c.time_status] else c.time_status
            tab.add_row(*map(escape, _row(c)), style=styles.get(worst))
        console.print(tab)
    for title, notes in _notes_sections(result):
        if notes:
            console.print(f"[bold]{title}: {len(notes)}[/]")
            for note in notes[: 5 if quiet else None]:
                console.print(f"  {note.label} — {note.detail}", markup=False, highlight=False)
            if quiet and len(notes) > 5:
                console.print(f"  … and {len(notes) - 5} more (see the summary file)")
    if not quiet:
        console.print(settings_line(result.config), markup=False, highlight=False)
    console.print(f"[bold {'red' if result.exit_code else 'green'}]{verdict_line(result)}[/]")
