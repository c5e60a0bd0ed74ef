"""What ``transferbench advise PATH`` will do, decided before anything runs: the task read from PATH, the wall-clock
budget, the candidate backbones and strategies, the race's configurations and the shared parameters.

Every problem with the request is one ``UserError`` line (the CLI turns it into exit code 2) raised here, before
any data is decoded or any model is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.backbones import resolve_backbone
from bench.core.errors import UserError
from bench.plan import registry

__all__ = ["AdvisePlan", "Config", "TABLE_SUFFIXES", "CHEAP", "make_plan", "parse_budget", "task_spec"]

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
COMPRESSED = (".gz", ".bz2", ".xz", ".zip", ".zst")
# Strategies that need no training epochs: they finish first and set the bar the trained ones must reach.
CHEAP = ("feature-extraction", "zero-shot")  # in launch order: the probe also fills the feature cache
DEFAULT_STRATEGIES = ("zero-shot", "feature-extraction", "partial-freeze", "full-fine-tune", "lp-ft", "from-scratch")
# Offline candidates, cheapest first: the order is also the cost order used to call a backbone dominated.
DEFAULT_BACKBONES = {"vision": ("tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"),
                     "text": ("glove-6b-50d", "minilm-l6")}
BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|min)?\s*$")
UNIT_S = {"s": 1, "m": 60, "min": 60, "h": 3600}


@dataclass(frozen=True)
class Tier:
    """What a budget affords: vision backbones raced, epochs at the full fidelity, learning rates per strategy."""

    up_to_s: float
    vision_backbones: int
    epochs: int
    lr_mults: tuple[float, ...]


# Chosen so that a 2-core CPU answers on a few thousand 64 px images or rows within the smallest tier: there one
# fine-tuning epoch of EfficientNet-Lite0 on ~1,700 images at 64 px takes 30-60 s (bench/PERF.md).
TIERS = (Tier(10 * 60, 1, 2, (1.0,)), Tier(60 * 60, 2, 5, (1.0, 0.3)), Tier(float("inf"), 3, 8, (1.0, 0.3, 3.0)))
FULL_EPOCHS = 8  # the reproducing suite trains this long: the largest tier's full fidelity


@dataclass(frozen=True)
class Config:
    """One race configuration: a strategy with one learning rate on one backbone."""

    backbone: str
    strategy: str
    params: dict[str, Any] = field(hash=False, default_factory=dict)

    @property
    def cheap(self) -> bool:
        return self.strategy in CHEAP

    def label(self) -> str:
        lr = f" lr={self.params['lr']:g}" if "lr" in self.params else ""
        return f"{self.strategy} on {self.backbone}{lr}"


@dataclass
class AdvisePlan:
    """The request, checked: the task entry, the budget and what the race may try."""

    task: dict[str, Any]
    modality: str
    budget_s: float
    backbones: list[str]
    strategies: list[str]
    params: dict[str, Any]
    tier: Tier
    seeds: tuple[int, ...] = (0, 1, 2)

    def configs(self, backbones: list[str]) -> list[Config]:
        """The race's configurations in launch order: backbone by backbone (cheapest first), the cheap strategies
        first, then each trained strategy at the default learning rate; then the other learning rates. A cheap
        backbone's trained strategies thus run before a dear backbone's probe can use up the race (on 5,000 rows
        MiniLM's probe took minutes, GloVe's fine-tuning seconds), and a tight budget tries every strategy once
        before it tries a second learning rate of any."""
        trained = [s for s in self.strategies if s not in CHEAP]

        def at(backbone: str, mult: float) -> list[Config]:
            base = {s: float(self.params.get("lr") or _default_lr(s, backbone)) for s in trained}
            return [Config(backbone, s, {"lr": float(f"{base[s] * mult:.3g}")}) for s in trained]

        first = [c for b in backbones for c in [Config(b, s) for s in CHEAP if s in self.strategies]
                 + at(b, self.tier.lr_mults[0])]
        return first + [c for mult in self.tier.lr_mults[1:] for b in backbones for c in at(b, mult)]


def parse_budget(text: str) -> float:
    """``5m``, ``30m``, ``2h``, ``90s`` (a bare number is minutes) → seconds."""
    match = BUDGET.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"--budget {text!r}: give a wall-clock time such as 5m, 30m or 2h")
    return float(match.group(1)) * UNIT_S[match.group(2) or "m"]


def task_spec(path: str, text: str | None = None, label: str | None = None, image_size: int = 64,
              name: str | None = None) -> dict[str, Any]:
    """The own-data task entry (docs/OWNDATA.md) for PATH: a folder is an image folder, a table file a text table."""
    where = Path(path).expanduser()
    slug = name or re.sub(r"[^a-z0-9_-]+", "-", where.stem.lower()).strip("-_")[:64] or "my-data"
    if where.is_dir():
        if text or label:
            raise UserError(f"{path}: --text and --label are for tables; an image folder takes its classes from "
                            "its sub-folders")
        return {"name": slug, "kind": "image-folder", "path": str(where.resolve()), "image_size": image_size}
    suffixes = [s.lower() for s in where.suffixes]
    while suffixes and suffixes[-1] in COMPRESSED:
        suffixes.pop()
    if where.is_file() and suffixes and suffixes[-1] in TABLE_SUFFIXES:
        slug = name or re.sub(r"[^a-z0-9_-]+", "-", where.name.split(".")[0].lower()).strip("-_")[:64] or "my-data"
        spec = {"name": slug, "kind": "text-table", "path": str(where.resolve())}
        return spec | ({"text": text} if text else {}) | ({"label": label} if label else {})
    if not where.exists():
        raise UserError(f"{path}: no such file or folder; give an image folder (one sub-folder per class) or a "
                        f"table ({', '.join(TABLE_SUFFIXES)})")
    raise UserError(f"{path}: neither a folder nor a table; give an image folder (one sub-folder per class) or a "
                    f"table ({', '.join(TABLE_SUFFIXES)})")


def make_plan(task: dict[str, Any], modality: str, budget: str, backbones: list[str] | None = None,
              strategies: list[str] | None = None, params: dict[str, Any] | None = None) -> AdvisePlan:
    """Check the request and fill in the defaults for the data's modality and the budget's tier."""
    budget_s = parse_budget(budget)
    tier = next(t for t in TIERS if budget_s <= t.up_to_s)
    strategies = list(strategies or DEFAULT_STRATEGIES)
    known = registry.plugins("strategy")
    for name in strategies:
        if name not in known:
            raise UserError(f"--strategies: unknown strategy {name!r}; valid: {', '.join(DEFAULT_STRATEGIES)}")
    if backbones:
        for name in backbones:
            backbone = resolve_backbone(name)  # an unknown name is one UserError line naming the valid kinds
            if backbone.modality != modality:
                raise UserError(f"--backbones: {name!r} is a {backbone.modality} backbone; the data is {modality}")
    else:
        defaults = DEFAULT_BACKBONES[modality]
        backbones = list(defaults[:tier.vision_backbones] if modality == "vision" else defaults)
    shared = {"epochs": tier.epochs, "batch_size": 64, "eval_batch_size": 128, "val_size": 0.15}
    if modality == "vision":
        shared["image_size"] = int(task.get("image_size", 64))
    return AdvisePlan(task, modality, budget_s, list(dict.fromkeys(backbones)), list(dict.fromkeys(strategies)),
                      shared | (params or {}), tier)


def _default_lr(strategy: str, backbone: str) -> float:
    """The learning rate a cell of ``strategy`` on ``backbone`` gets without a suite override."""
    from bench.plan.params import shared_defaults, strategy_params

    own = {k: p.default for k, p in strategy_params(registry.get("strategy", strategy)).items()}
    defaults = resolve_backbone(backbone).defaults
    merged = shared_defaults() | own | defaults.get("*", {}) | defaults.get(strategy, {})
    return float(merged["lr"])
