"""``transferbench advise PATH``: from the user's own image folder or table to a recommended strategy, within a
wall-clock budget (docs/ADVISE.md).

Steps, each on the clock of the budget: (1) transferability estimates (LogME on cached frozen features) rank the
candidate backbones and drop the dominated ones; (2) the race (``bench.advise.race``): cheap strategies set the
bar, trained ones are pruned by successive halving; (3) the finals: every configuration that completed the race
runs on more seeds while the budget allows; (4) the recommendation (``bench.advise.recommend``) from validation,
reported with the held-out test score. Outputs: the answer, ``advice.json``/``advice.txt``, the HTML report and
``reproduce.yaml`` (the final comparison at full budget, for ``transferbench run``), all in the results folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from bench import results
from bench.results import roles
from bench.advise.plan import FULL_EPOCHS, AdvisePlan, Config, make_plan, task_spec
from bench.advise.evidence import write_evidence
from bench.advise.race import ROLE, Clock, Race, final_cell, row_value
from bench.advise.recommend import Candidate, Recommendation, answer_text, recommend, test_interval
from bench.infra.atomic import write_json, write_text
from bench.infra.provenance import pick_device
from bench.run.cell import run_cell
from bench.results.schema import CellRecord
from bench.run.estimate import estimate_row, plan_estimates
from bench.run.rowloop import pending
from bench.plan.suite import Cell, Suite, expand, parse_suite

__all__ = ["AdviseResult", "advise", "RACE_SHARE", "FINALS_SHARE"]

RACE_SHARE = 0.6  # the race may spend this share of the budget, and more where the finals will not need it
FINALS_SHARE = 0.9  # the finals end by this share; the rest is for the answer, the report and the suite file
ESTIMATE_SAMPLES = 1000  # training samples per LogME estimate: enough to rank, cheap on a CPU
# LogME (nats per sample) a bigger backbone must trail a cheaper one by to be dropped: on Rotten Tomatoes GloVe and
# MiniLM were 0.004 apart, while fine-tuned MiniLM is far ahead of anything on GloVe, so a near tie drops nothing.
DOMINANCE_MARGIN = 0.05
FINAL_SEEDS = (0, 1, 2)  # seed 0 is the race's own run; the others run while the budget allows


@dataclass
class AdviseResult:
    answer: str
    results_dir: Path
    report: Path | None
    suite_file: Path | None
    spent_s: float
    budget_s: float
    notes: list[str] = field(default_factory=list)


def advise(path: str, budget: str = "5m", backbones: list[str] | None = None, strategies: list[str] | None = None,
           results_dir: str | Path | None = None, text: str | None = None, label: str | None = None,
           image_size: int = 64, device: str | None = None, report: bool = True,
           say: Callable[[str], None] | None = None, params: dict[str, Any] | None = None) -> AdviseResult:
    """Answer "which backbone and strategy for this data, at what cost?" within ``budget`` (e.g. ``5m``).

    Args:
        path: an image folder (one sub-folder per class) or a table (csv, tsv, jsonl, json, parquet).
        budget: wall-clock budget of this invocation: ``5m``, ``30m``, ``2h``, ``90s``.
        backbones, strategies: narrow (or replace) the default candidates.
        results_dir: where rows, report and suite go (default ``results/advise-<data name>``); rerunning with the
            same folder resumes.
        text, label: the table's columns (docs/OWNDATA.md). image_size: pixels of the stored and fed images.
        device: torch device (default: CUDA when available). report: write the HTML report.
        say: where progress lines go (default: stderr).
        params: shared cell parameters over the plan's (e.g. ``{"min_steps_per_epoch": 2}`` in tests; ``lr`` sets
            the base learning rate of every trained strategy).

    Raises:
        UserError: bad input (path, budget, names, columns), before anything is trained.
    """
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    spec = task_spec(path, text, label, image_size)
    modality = "vision" if spec["kind"] == "image-folder" else "text"
    plan = make_plan(spec, modality, budget, backbones, strategies, params)
    clock = Clock(plan.budget_s)
    suite = _suite(plan)
    meta = _task(suite).metadata
    out = Path(results_dir or Path("results") / suite.name).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    torch_device = pick_device(device)
    say(f"advise: {meta.name} ({modality}, {len(meta.classes)} classes, main metric {meta.main_metric}); "
        f"budget {_dur(plan.budget_s)}; results in {out}")
    notes: list[str] = []

    kept = _rank_backbones(plan, suite, out, torch_device, say, notes)
    configs = plan.configs(kept)
    numbers = {c.label(): n for n, c in enumerate(plan.configs(plan.backbones))}  # stable across resumes
    templates = {(c.backbone, c.strategy): c for c in expand(suite)}

    def make_cell(config: Config, number: int) -> Cell:
        base = templates[(config.backbone, config.strategy)]
        return dataclasses.replace(base, params=base.params | config.params, role=ROLE,
                                   trial=numbers.get(config.label(), number))

    say(f"race: {len(configs)} configuration(s), up to {plan.tier.epochs} epochs, {_dur(plan.budget_s * RACE_SHARE)}")
    race = Race(configs, make_cell, out, torch_device, clock, RACE_SHARE, plan.tier.epochs, say, suite.name,
                metric=meta.main_metric, finals_share=FINALS_SHARE, final_runs=len(FINAL_SEEDS) - 1)
    rows = race.run()
    if race.not_run:
        notes.append(f"not launched within the budget: {', '.join(race.not_run)}")
    pruned = [label for label, r in rows.items() if r.get("status") == "pruned"]
    if pruned:
        notes.append(f"pruned in the race: {', '.join(pruned)}")

    candidates = _finals(configs, rows, make_cell, out, torch_device, clock, say, suite.name, notes)
    rec = recommend(candidates, out)
    answer = answer_text(rec) if rec else "no answer: no configuration completed within the budget (see the report)"
    suite_file = _write_suite(plan, rec, out) if rec else None
    results.consolidate_locked(out)
    _write_advice(out, answer, rec, notes, clock, plan, list(rows.values()))
    report_path = None
    if report:
        from report import build_report

        report_path = build_report(out, out / "report.html")
    return AdviseResult(answer, out, report_path, suite_file, clock.elapsed(), plan.budget_s, notes)


# --- steps ---------------------------------------------------------------------------------------------------
def _suite(plan: AdvisePlan) -> Suite:
    """The advise run as a suite: registers the user's task (as ``run`` does) and gives the cells' parameters."""
    doc = {"name": f"advise-{plan.task['name']}", "tasks": [plan.task], "backbones": plan.backbones,
           "strategies": plan.strategies, "params": plan.params, "seeds": [0]}
    return parse_suite(doc, where="advise")


def _task(suite: Suite):
    from bench.plan import registry

    task = registry.get("task", suite.tasks[0])
    task.metadata  # noqa: B018 - scans the data now: a bad folder or column fails before anything trains
    return task


def _rank_backbones(plan: AdvisePlan, suite: Suite, out: Path, device, say, notes: list[str]) -> list[str]:
    """LogME per backbone (frozen features, cached for the probe); a backbone whose LogME trails a cheaper one's
    (listed before it) by more than ``DOMINANCE_MARGIN`` is dominated (bigger and less transferable) and leaves the
    race."""
    if len(plan.backbones) < 2:
        return list(plan.backbones)
    done = results.read_cell_rows(out)
    cells = [cell for cell in plan_estimates(suite, ESTIMATE_SAMPLES) if not cell.random]
    for cell in pending(cells, done):  # recorded estimates are reused on a rerun (bench.run.rowloop's rule)
        say(f"estimate: LogME of {cell.backbone} ...")
        record = CellRecord(*estimate_row(cell, suite.name, device))
        results.record_cell(out, record)  # traceback, then the row: the one writer of every command
        done[cell.key] = record.row
    logme: dict[str, float] = {}
    for cell in cells:
        row = done[cell.key]
        value = row.get("logme")
        logme[cell.backbone] = float(value) if row.get("status") == "ok" and value is not None else math.nan
    kept, best = [], -math.inf
    for name in plan.backbones:  # cheapest first
        value = logme.get(name, math.nan)
        if math.isnan(value) or value >= best - DOMINANCE_MARGIN:
            kept.append(name)
            best = max(best, value) if not math.isnan(value) else best
        else:
            notes.append(f"{name} dropped before the race: LogME {value:.3f} trails a cheaper backbone's ({best:.3f}) "
                         f"by more than {DOMINANCE_MARGIN}")
    say("estimate: LogME " + ", ".join(f"{b} {v:.3f}" for b, v in logme.items()) + f"; racing {', '.join(kept)}")
    return kept


def _finals(configs: list[Config], rows: dict[str, dict], make_cell, out: Path, device, clock: Clock, say,
            suite_name: str, notes: list[str]) -> list[Candidate]:
    """The best completed configuration of each backbone × strategy, on more seeds while the budget allows."""
    best: dict[tuple[str, str], tuple[float, Config, int]] = {}
    for number, config in enumerate(configs):
        row = rows.get(config.label())
        value = row_value(row) if row and row.get("status") == "ok" else None
        key = (config.backbone, config.strategy)
        if value is not None and (key not in best or value > best[key][0]):
            best[key] = (value, config, number)
    ranked = sorted(best.values(), key=lambda item: -item[0])
    done = results.read_cell_rows(out)
    candidates = []
    for _, config, number in ranked:
        race_cell = make_cell(config, number)
        seed0 = final_cell(race_cell, FINAL_SEEDS[0])
        if seed0.key not in done:  # the race ran this configuration on seed 0 already: the same run
            row = dict(rows[config.label()], cell=seed0.key, role=roles.FINAL, trial=None, selected_from=race_cell.key,
                       search_note=f"advise: race trial {race_cell.trial} completed all epochs")
            results.record_copy(out, row, race_cell.key)  # the race trial's predictions come along
            done[seed0.key] = row
        candidates.append(Candidate(config.backbone, config.strategy, config.params, [done[seed0.key]], out))
    say(f"finals: {len(candidates)} configuration(s) on seeds {', '.join(map(str, FINAL_SEEDS))} as the budget allows")
    skipped = []
    for seed in FINAL_SEEDS[1:]:
        for candidate, (_, config, number) in zip(candidates, ranked):
            cell = final_cell(make_cell(config, number), seed)
            row = done.get(cell.key)
            if row is None:
                cost = candidate.rows[0]["wall_time_s"]
                if cost > clock.left(FINALS_SHARE):
                    skipped.append(f"{candidate.label} seed {seed}")
                    continue
                say(f"  final: {candidate.label} seed {seed} ...")
                record = run_cell(cell, suite_name, device)
                row = record.row
                results.record_cell(out, record)  # traceback, predictions, then the row
                say(f"    {row['status']}: val {row_value(row) or math.nan:.4f} in {row['wall_time_s']:.1f}s")
            if row.get("status") == "ok":
                candidate.rows.append(row)
    if skipped:
        notes.append(f"final seeds left out by the budget: {', '.join(skipped)}")
    return candidates


# --- outputs -------------------------------------------------------------------------------------------------
def _write_suite(plan: AdvisePlan, rec: Recommendation, out: Path) -> Path:
    """``reproduce.yaml``: the finalists on every seed at full budget, for ``transferbench run``; it is read back
    with the suite reader before it is kept, so a file that would not run is never written."""
    finalists = rec.ranked
    strategies = list(dict.fromkeys(c.strategy for c in finalists))
    lrs: dict[str, list[float]] = {}
    for c in finalists:
        if "lr" in c.params:
            lrs.setdefault(c.strategy, [])
            if c.params["lr"] not in lrs[c.strategy]:
                lrs[c.strategy].append(c.params["lr"])
    doc = {"name": f"advise-{plan.task['name']}-full",
           "description": f"the final comparison of `transferbench advise` at full budget ({FULL_EPOCHS} epochs)",
           "tasks": [plan.task], "backbones": list(dict.fromkeys(c.backbone for c in finalists)),
           "strategies": strategies, "seeds": list(FINAL_SEEDS), "params": plan.params | {"epochs": FULL_EPOCHS},
           "strategy_params": {s: {"lr": v[0] if len(v) == 1 else v} for s, v in lrs.items()}}
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    parse_suite(yaml.safe_load(text), where="reproduce.yaml")
    path = out / "reproduce.yaml"
    write_text(path, text)
    return path


def _write_advice(out: Path, answer: str, rec: Recommendation | None, notes: list[str], clock: Clock,
                  plan: AdvisePlan, race_rows: list[dict[str, Any]]) -> None:
    spent = clock.elapsed()
    budget_line = f"spent {_dur(spent)} of the {_dur(plan.budget_s)} budget"
    doc: dict[str, Any] = {"answer": answer, "notes": notes, "spent_s": spent, "budget_s": plan.budget_s,
                           "task": plan.task, "candidates": []}
    if rec:
        for c in rec.ranked:
            test = test_interval(c)
            noise = rec.noise.get(c.label)
            doc["candidates"].append({
                "backbone": c.backbone, "strategy": c.strategy, "params": c.params, "seeds": len(c.rows),
                "val_mean": float(sum(c.val()) / len(c.val())), "test_mean": test.mean, "test_low": test.low,
                "test_high": test.high, "cost_s": c.cost_s, "best": c is rec.best, "cheapest_within_noise":
                c is rec.cheapest, "within_noise": None if noise is None else noise.within,
                "noise_method": None if noise is None else noise.method})
    write_json(out / "advice.json", json.loads(json.dumps(doc, default=str)))
    write_text(out / "advice.txt", "\n".join([answer, *notes, budget_line]) + "\n")
    write_evidence(out, answer, notes, rec, race_rows, budget_line)


def _dur(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"
