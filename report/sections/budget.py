"""The page's budget section: ``report.budget``'s table as page tables."""

from __future__ import annotations

import math

import pandas as pd

from report.cells import TableCell, Table, count, sort_key, seconds


def html_tables(table: pd.DataFrame) -> list:
    """One ``report.cells.Table`` per task for the page's Budget section."""

    headers = [("backbone", ""), ("strategy", ""), ("fraction", "fraction of training labels"),
               ("search trials", "hyperparameter trials run (runs of them, when a trial ran on several seeds)"),
               ("search steps", "optimizer steps trained by the search trials (epochs when steps are unknown)"),
               ("final steps", "optimizer steps trained by the final runs (every seed)"),
               ("search time", "wall time of the search trials"), ("final time", "wall time of the final runs"),
               ("total time", "search + final wall time")]

    def steps_cell(steps: float, epochs: float, source: str) -> TableCell:
        if source == "epochs" or not math.isfinite(steps):
            return TableCell(f"{count(epochs)} epochs", sort_key(epochs), "steps unknown")
        return TableCell(count(steps), sort_key(steps),
                         "inferred: epochs × steps/epoch" if source == "inferred" else "")

    out = []
    for task in sorted(set(table["task"])):
        rows = []
        for r in table[table["task"] == task].itertuples():
            trials = TableCell(str(r.search_trials), str(r.search_trials),
                               f"{r.search_runs} runs" if r.search_runs != r.search_trials else "")
            search_steps = steps_cell(r.search_steps, r.search_epochs, r.steps_source)
            if r.note:
                trials, search_steps = TableCell(r.note, "0", cls="msg"), TableCell("—", "0")
            rows.append([
                TableCell(r.backbone, r.backbone), TableCell(r.strategy, r.strategy),
                TableCell(f"{r.fraction:g}", sort_key(r.fraction)),
                trials, search_steps, steps_cell(r.final_steps, r.final_epochs, r.steps_source),
                TableCell(seconds(r.search_wall_time_s), sort_key(r.search_wall_time_s)),
                TableCell(seconds(r.final_wall_time_s), sort_key(r.final_wall_time_s), f"{r.final_runs} runs"),
                TableCell(seconds(r.total_wall_time_s), sort_key(r.total_wall_time_s)),
            ])
        out.append(Table(f"Budget — {task}", headers, rows))
    return out
