"""The rounds of a run: per group (task × backbone × strategy × fraction × grid point) the search trials in waves,
the selection on validation, then the selected configuration on every seed.

The orchestrator (``bench.runner``) asks ``SearchPlan.next_round(rows)`` for the cells of the next round, runs the
ones not yet recorded with its executor, and passes every recorded row back in the next call. A suite without
``search:`` is one round holding every cell, exactly as before. With a search, every group advances one wave per
round, so groups run side by side and a wave's trials run in parallel on the process and Ray executors.

Search trials run on the first seed of the suite's ``seeds``; selection reads the validation value of the trial
rows only (``bench.plan.search.trial_value``), never a test score.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.results import roles
from bench.plan.search import StrategySearch, TrialResult, best_trial, suggest, trial_value
from bench.plan.suite import Cell, Suite

__all__ = ["SearchPlan"]

Rows = dict[str, dict[str, Any]]


@dataclass
class _Group:
    ident: str  # seeds the group's sampler: task, backbone, strategy, fraction and the base parameters
    template: Cell  # the group's first cell (base parameters): trials are copies of it
    finals: list[Cell]  # the group's final cells with the base parameters, for the seeds --only kept
    trial_seed: int
    search: StrategySearch | None = None
    note: str | None = None  # why the group has no search (the suite has one)
    history: list[TrialResult] = field(default_factory=list)
    pending: list[Cell] = field(default_factory=list)  # the trials of the wave now running
    done: bool = False

    def size(self) -> int:
        return len(self.finals) + (self.search.trials if self.search else 0)

    def advance(self, rows: Rows, wave_size: int) -> list[Cell]:
        """The group's cells for the next round (none once its finals have been handed out)."""
        if self.done:
            return []
        if self.search is None:
            self.done = True
            return [dataclasses.replace(c, search_note=self.note) for c in self.finals]
        for cell in self.pending:
            self.history.append(TrialResult(cell.trial, self._trial_params(cell), trial_value(rows.get(cell.key)),
                                            cell.key))
        self.pending = []
        if len(self.history) < self.search.trials:
            for _ in range(min(wave_size, self.search.trials - len(self.history))):
                running = [TrialResult(c.trial, self._trial_params(c), None) for c in self.pending]
                params = suggest(self.search, self.ident, self.history + running)
                self.pending.append(self._trial_cell(len(self.history) + len(running), params))
            return list(self.pending)
        self.done = True
        return self._final_cells()

    def _trial_params(self, cell: Cell) -> dict[str, Any]:
        return {name: cell.params[name] for name in self.search.space}

    def _trial_cell(self, number: int, params: dict[str, Any]) -> Cell:
        return dataclasses.replace(self.template, seed=self.trial_seed, params=self.template.params | params,
                                   role=roles.SEARCH, trial=number, selected_from=None, search_note=None)

    def _final_cells(self) -> list[Cell]:
        best = best_trial(self.history)
        if best is None:
            note = f"every one of the {len(self.history)} search trials failed; the default configuration was run"
            return [dataclasses.replace(c, search_note=note) for c in self.finals]
        note = (f"selected trial {best.number} of {len(self.history)} ({self.search.sampler} search) on validation: "
                + json.dumps(best.params, sort_keys=True))
        return [dataclasses.replace(c, params=c.params | best.params, selected_from=best.cell, search_note=note)
                for c in self.finals]


class SearchPlan:
    """Which cells each round of a run holds, from the suite's plain cells (``bench.plan.suite.expand``)."""

    def __init__(self, suite: Suite, cells: list[Cell], keep: Callable[[list[Cell]], list[Cell]], wave_size: int):
        """Group ``cells`` (the suite's expansion) and apply the ``--only`` filter ``keep``.

        A group takes part when ``keep`` leaves any of its cells (the finals, or its search template, role
        ``search`` on the first seed); it then runs its whole search, and finals for the seeds that were kept.
        """
        self.wave_size = max(1, wave_size)
        self.groups: list[_Group] = []
        self.issued: list[str] = []
        groups: dict[str, list[Cell]] = {}
        for cell in cells:
            ident = json.dumps([cell.task, cell.backbone, cell.strategy, cell.fraction, cell.params],
                               sort_keys=True, default=str)
            groups.setdefault(ident, []).append(cell)
        for ident, members in groups.items():
            search, note = suite.search.for_strategy(members[0].strategy) if suite.search else (None, None)
            probe = dataclasses.replace(members[0], seed=suite.seeds[0], role=roles.SEARCH)
            kept = keep(members + ([probe] if search else []))
            if not kept:
                continue
            self.groups.append(_Group(ident, members[0], [c for c in kept if c.role == roles.FINAL], suite.seeds[0],
                                      search, note))

    def size(self) -> int:
        """How many cells the plan holds in all (trials and finals), recorded ones included."""
        return sum(g.size() for g in self.groups)

    def next_round(self, rows: Rows) -> list[Cell]:
        """The cells of the next round, given every row recorded so far (empty: the run is complete)."""
        cells: dict[str, Cell] = {}
        for group in self.groups:
            for cell in group.advance(rows, self.wave_size):
                cells.setdefault(cell.key, cell)
        self.issued.extend(cells)
        return list(cells.values())
