"""The budgeted race: every configuration is an ordinary cell (role ``race``) and Optuna's successive-halving
pruner stops trained ones whose validation curve falls behind.

How it runs:
- Cheap strategies (``CHEAP``: the feature-extraction probe, zero-shot) run first on each backbone. They have no
  epochs; their
  validation score is entered into the study at every epoch step, since it is available at any fidelity: this is
  the bar the trained strategies' curves are compared against.
- A trained configuration reports its validation main metric after every epoch through the cell's ``on_epoch``
  callback (``trial.report``); when ``trial.should_prune()`` says so, or when the next epoch would not fit in the
  race's share of the wall-clock budget, the callback raises ``TrialPruned``. The cell is then recorded with
  ``status: pruned``, the curve it reached, ``fidelity`` (epochs trained) and ``pruned_by`` (pruner or budget):
  visible in the results, never counted as a failure.
- Before launching a cell its cost is predicted from the cells that ran (per-epoch time of the same backbone ×
  strategy, else the slowest trained cell's, else the probe's time per epoch); a configuration that cannot fit
  in the time left is not launched, and the answer lists it.
- Resuming: a configuration whose cell is recorded is not run again; its row re-enters the study (values and rungs
  rebuilt from its curve), so the pruner decides the remaining trials as it would have.

Everything here reads validation only; test scores in race rows (computed by the shared cell) are never read.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState, create_trial

from bench import results
from bench.advise.plan import Config
from bench.core.errors import TrialPruned
from bench.results import roles
from bench.run.cell import run_cell
from bench.plan.search import trial_value
from bench.plan.suite import Cell

__all__ = ["ETA", "MIN_RESOURCE", "ROLE", "Clock", "Race", "rung_attrs"]

ROLE = roles.RACE
ETA = 3  # successive halving keeps the top third at each rung
MIN_RESOURCE = 1  # first rung after one epoch: the cheapest look at a curve
PASSES_PER_EPOCH = 3.0  # a training epoch ~ 3 forward passes (backward ~ 2): the prior before any trained cell
optuna.logging.set_verbosity(optuna.logging.WARNING)

Say = Callable[[str], None]


@dataclass
class Clock:
    """The wall-clock budget of one ``advise`` invocation (recorded cells cost nothing when resuming)."""

    budget_s: float
    start: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self, share: float = 1.0) -> float:
        """Seconds left until ``share`` of the budget is spent."""
        return self.budget_s * share - self.elapsed()


def rung_attrs(values: dict[int, float]) -> dict[str, float]:
    """The successive-halving rungs a curve completed (``completed_rung_k`` at step MIN_RESOURCE × ETA**k), as the
    pruner would have recorded them: what a recorded trial needs to compete at those rungs again."""
    attrs, rung = {}, 0
    while values and MIN_RESOURCE * ETA**rung <= max(values):
        step = MIN_RESOURCE * ETA**rung
        if step in values:
            attrs[f"completed_rung_{rung}"] = values[step]
        rung += 1
    return attrs


def curve_values(row: dict[str, Any], metric: str) -> dict[int, float]:
    """Validation ``metric`` per epoch step (1, 2, ...) of a row's curve (the epoch-0 point is before training)."""
    curve = row.get("curve") or []
    points = [p for p in (json.loads(curve) if isinstance(curve, str) else curve) if p.get("epoch") != 0]
    return {step: float(p[f"val_{metric}"]) for step, p in enumerate(points, start=1)
            if p.get(f"val_{metric}") is not None}


def row_value(row: dict[str, Any]) -> float | None:
    """A race row's validation main metric: the selected epoch of an ok row, the best reached by a pruned one."""
    if row.get("status") == "pruned":
        values = curve_values(row, row.get("main_metric", "accuracy"))
        return max(values.values()) if values else None
    return trial_value(row)


@dataclass
class Race:
    """One race over ``configs`` (launch order), each turned into a cell by ``make_cell``."""

    configs: list[Config]
    make_cell: Callable[[Config, int], Cell]
    results_dir: Path
    device: Any
    clock: Clock
    share: float  # the race may spend this share of the budget at least; the finals get the rest
    epochs: int
    say: Say
    suite_name: str = "advise"
    metric: str = "accuracy"  # the task's main metric (macro_f1 on unbalanced classes)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # config label -> its race row
    not_run: list[str] = field(default_factory=list)  # configurations the budget left out
    # Where the finals end (share of the budget): the race may also use what the finals of the configurations that
    # completed so far are predicted not to need.
    finals_share: float | None = None
    final_runs: int = 2  # final runs per completed configuration beyond its race run

    def __post_init__(self):
        self.study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0),
                                         pruner=optuna.pruners.SuccessiveHalvingPruner(
                                             min_resource=MIN_RESOURCE, reduction_factor=ETA))

    def run(self) -> dict[str, dict[str, Any]]:
        """Run (or read back) every configuration that fits; returns ``{config label: race row}``."""
        done = results.read_cell_rows(self.results_dir)
        for number, config in enumerate(self.configs):
            cell = self.make_cell(config, number)
            row = done.get(cell.key)
            if row is not None:
                self._enter(config, row)
                continue
            predicted = self._predict(config)
            left = self._left()
            if predicted is not None and predicted > left or left <= 0:
                self.not_run.append(config.label())
                self.say(f"  not launched: {config.label()} (predicted {_dur(predicted)}, {_dur(max(left, 0))} "
                         "left for the race)")
                continue
            row = self._run(config, cell)
            self._enter(config, row, live=True)
        return self.rows

    # --- one trial -------------------------------------------------------------------------------------------
    def _run(self, config: Config, cell: Cell) -> dict[str, Any]:
        self.say(f"  race {len(self.rows) + 1}/{len(self.configs)}: {config.label()} ...")
        trial = None if config.cheap else self.study.ask()
        hook = None if trial is None else self._hook(trial)
        record = run_cell(cell, self.suite_name, self.device, on_epoch=hook)
        row = record.row
        values = curve_values(row, row.get("main_metric", "accuracy"))
        row["fidelity"] = None if config.cheap else len(values)
        row["fidelity_max"] = None if config.cheap else self.epochs
        row["pruned_by"] = (row["error"] or "").split(":")[0] if row["status"] == "pruned" else None
        results.record_cell(self.results_dir, record)  # traceback, predictions, then the row
        if trial is not None:  # the asked trial is told now, so the next ones compete against it
            value = row_value(row)
            state = {"ok": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(row["status"], TrialState.FAIL)
            state = TrialState.FAIL if value is None and state == TrialState.COMPLETE else state
            self.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        self.say(f"    {_outcome(row)}")
        return row

    def _hook(self, trial: optuna.Trial) -> Callable[[dict], None]:
        step = 0
        last = time.monotonic()
        curve: list[dict] = []  # the points after each epoch (callbacks never see the loop's epoch-0 point)

        def on_epoch(point: dict) -> None:
            nonlocal step, last
            step += 1
            curve.append(point)
            now = time.monotonic()
            epoch_s, last = now - last, now
            metric = self.metric
            value = float(point[f"val_{metric}"])
            trial.report(value, step)
            if step >= self.epochs:
                return  # the last epoch: nothing left to stop
            if trial.should_prune():
                raise TrialPruned(f"pruner: after epoch {step} of {self.epochs}, validation {metric} {value:.4f} is "
                                  "not in the top third at this fidelity", list(curve))
            if epoch_s > self._left():
                raise TrialPruned(f"budget: epoch {step + 1} of {self.epochs} (~{epoch_s:.0f}s) would not fit in the "
                                  f"{max(self._left(), 0):.0f}s left for the race",
                                  list(curve))

        return on_epoch

    def _left(self) -> float:
        """Seconds the race may still spend: its share, or up to the finals' end less what the finals of the
        configurations completed so far are predicted to cost (each: its race run's wall time per final run)."""
        left = self.clock.left(self.share)
        if self.finals_share is None:
            return left
        best: dict[tuple[str, str], tuple[float, float]] = {}
        for config in self.configs:
            row = self.rows.get(config.label())
            value = row_value(row) if row and row.get("status") == "ok" else None
            key = (config.backbone, config.strategy)
            if value is not None and (key not in best or value > best[key][0]):
                best[key] = (value, float(row["wall_time_s"]))
        finals = self.final_runs * sum(wall for _, wall in best.values())
        return max(left, self.clock.left(self.finals_share) - finals)

    # --- the study -------------------------------------------------------------------------------------------
    def _enter(self, config: Config, row: dict[str, Any], live: bool = False) -> None:
        """Record ``row`` as the configuration's outcome; a cheap or recorded trial enters the study frozen."""
        self.rows[config.label()] = row
        if live and not config.cheap:
            return  # an asked trial: already told
        value = row_value(row)
        if config.cheap:
            values = {step: value for step in range(1, self.epochs + 1)} if value is not None else {}
            state = TrialState.COMPLETE if value is not None else TrialState.FAIL
        else:
            values = curve_values(row, row.get("main_metric", "accuracy"))
            state = {"ok": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(row.get("status"), TrialState.FAIL)
            if value is None:
                state = TrialState.FAIL
        if not live:
            self.say(f"  recorded: {config.label()}: {_outcome(row)}")
        self.study.add_trial(create_trial(
            state=state, value=value if state == TrialState.COMPLETE else None,
            intermediate_values=values if state != TrialState.FAIL else {},
            system_attrs=rung_attrs(values) if state != TrialState.FAIL else {}, user_attrs={"cell": row["cell"]}))

    def _predict(self, config: Config) -> float | None:
        """Predicted seconds for ``config``'s cell (None: nothing comparable ran yet; it is launched)."""
        seen = [(c, r) for c, r in ((c, self.rows.get(c.label())) for c in self.configs) if r is not None]
        if config.cheap:
            same = [r["wall_time_s"] for c, r in seen if (c.backbone, c.strategy) == (config.backbone, config.strategy)]
            return max(same) if same else None
        per_epoch = {(c.backbone, c.strategy): _per_epoch(r) for c, r in seen if not c.cheap and _per_epoch(r)}
        if (config.backbone, config.strategy) in per_epoch:
            return per_epoch[(config.backbone, config.strategy)] * (self.epochs + 1)
        if per_epoch:  # an unseen strategy: assume it is as slow as the slowest one seen
            return max(per_epoch.values()) * (self.epochs + 1)
        probe = [r for c, r in seen if c.strategy == "feature-extraction" and c.backbone == config.backbone
                 and r.get("feature_time_s")]
        if not probe:
            return None
        # No trained cell yet: the probe's feature extraction measured one forward pass over every split (train,
        # validation and held-out test); an epoch trains on the train split (a forward and backward pass, about
        # three forward passes) and evaluates the validation split once.
        row = max(probe, key=lambda r: r["feature_time_s"])
        n_train, n_val, n_test = (int(row.get(k) or 0) for k in ("n_train", "n_val", "n_test"))
        seen_samples = n_train + n_val + n_test
        per_sample = row["feature_time_s"] / seen_samples if seen_samples else row["feature_time_s"]
        per_epoch = per_sample * (PASSES_PER_EPOCH * n_train + n_val) if seen_samples else \
            PASSES_PER_EPOCH * row["feature_time_s"]
        return per_epoch * (self.epochs + 1)


def _per_epoch(row: dict[str, Any]) -> float | None:
    """Seconds per epoch of a trained cell, setup and evaluation included (the epoch-0 evaluation counts as one)."""
    epochs = row.get("epochs_run") or 0
    wall = row.get("wall_time_s")
    return wall / (epochs + 1) if wall and epochs else None


def _outcome(row: dict[str, Any]) -> str:
    value = row_value(row)
    shown = f"val {value:.4f}" if value is not None else "no validation score"
    if row["status"] == "pruned":
        return f"pruned at epoch {row.get('fidelity')} ({row['error']}); {shown}; {row['wall_time_s']:.1f}s"
    if row["status"] != "ok":
        return f"{row['status']}: {row['error']}"
    return f"{shown} in {row['wall_time_s']:.1f}s"


def _dur(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    return f"{seconds / 60:.1f}min" if seconds >= 90 else f"{seconds:.0f}s"


def final_cell(race_cell: Cell, seed: int) -> Cell:
    """The final cell (role ``final``) of a race configuration on ``seed``."""
    return dataclasses.replace(race_cell, seed=seed, role=roles.FINAL, trial=None, selected_from=race_cell.key)
