"""``transferbench fetch``: materialise the offline assets that tasks, backbones or a whole suite need."""

from __future__ import annotations

from typing import Iterator

from bench.infra import assets
from bench.plan import registry
from bench.backbones import resolve_backbone
from bench.core.errors import UserError
from bench.plan import preflight
from bench.plan.suite import SUITES_DIR, Suite, expand, find_suite_file, load_suite

DEFAULT_SUITE = "quick"


def suite_assets(suite: Suite) -> list[str]:
    names: list[str] = []
    for task in suite.tasks:
        names += registry.get("task", task).assets
    for backbone in suite.backbones:
        names += resolve_backbone(backbone).assets
    if "zero-shot" in suite.strategies and any(
            registry.get("task", t).metadata.modality == "vision" for t in suite.tasks):
        names.append("minilm-l6")  # maps ImageNet class names to target class names
    return list(dict.fromkeys(names))


def _expand(name: str) -> tuple[list[str], list[str]]:
    """(asset names, backbone names whose weights should be converted) for one command-line name."""
    if name in assets.ASSETS:
        return [name], []
    if name in registry.plugins("task"):
        return list(registry.get("task", name).assets), []
    if _is_suite(name):
        suite = load_suite(str(find_suite_file(name)))
        return suite_assets(suite), list(suite.backbones)
    try:
        backbone = resolve_backbone(name)
    except UserError:
        raise UserError(f"nothing to fetch for {name!r}: not an asset ({', '.join(assets.ASSETS)}), task, "
                        "backbone or suite") from None
    return list(backbone.assets), [name]


def _is_suite(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or (SUITES_DIR / f"{name}.yaml").is_file()


def fetch_names(names: list[str]) -> Iterator[str]:
    """Fetch what ``names`` need (default: the bundled quick suite) and yield one line per asset."""
    wanted: list[str] = []
    backbones: list[str] = []
    suites = [load_suite(str(find_suite_file(n))) for n in names or [DEFAULT_SUITE] if _is_suite(n)]
    for name in names or [DEFAULT_SUITE]:
        more_assets, more_backbones = _expand(name)
        wanted += more_assets
        backbones += more_backbones
    for name in dict.fromkeys(wanted):
        was_there = assets.is_fetched(name)
        path = assets.fetch(name)
        yield f"{name:20s} {'cached ' if was_there else 'fetched'} {path}"
    for name in dict.fromkeys(backbones):
        backbone = resolve_backbone(name)
        if backbone.assets:
            yield f"{name:20s} weights {backbone.weights_source()}"  # converts once, then reads the cache
    for suite in suites:  # what fetching cannot bring: say so now, not one error row per cell later
        preflight.check_cells(expand(suite))
