"""Plugin discovery: every ``strategies/*.py`` and ``tasks/*.py`` file (not starting with ``_``) holds plugins.

A plugin is a concrete class defined in that file whose ``kind`` matches the folder; it has a ``name``. Two plugins
with one name fail loudly; an unknown name lists the valid ones (as MTEB and lm-eval do).

``TRANSFERBENCH_EXTRA_PLUGINS=pkg.mod,other.mod`` adds the plugins of those modules too. It is an environment
variable, not an argument, so that worker processes (process pool, Ray) find the same plugins as the runner.
Tasks declared inline in a suite (the user's own image folders and tables, ``bench.owndata``) travel the same way:
``declare_task`` records their specs in ``TRANSFERBENCH_OWN_TASKS`` (JSON), and ``get`` rebuilds them on demand.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import os
import pkgutil
from functools import lru_cache
from types import ModuleType
from typing import Any

from bench.core.errors import UserError

PACKAGES = {"strategy": "strategies", "task": "tasks"}


def _modules(package: str) -> list[ModuleType]:
    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{package}.{name}") for name in names]


def _extra_modules() -> list[ModuleType]:
    names = [n.strip() for n in os.environ.get("TRANSFERBENCH_EXTRA_PLUGINS", "").split(",") if n.strip()]
    return [importlib.import_module(name) for name in names]


@lru_cache(maxsize=None)
def plugins(kind: str) -> dict[str, Any]:
    """Return ``{name: instance}`` for every plugin of ``kind`` ("strategy" or "task")."""
    found: dict[str, Any] = {}
    where: dict[str, str] = {}
    for module in _modules(PACKAGES[kind]) + _extra_modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or getattr(cls, "kind", None) != kind or inspect.isabstract(cls):
                continue
            plugin = cls()
            name = plugin.name
            if name in found:
                raise RuntimeError(f"two {kind} plugins are named {name!r}: {where[name]} and {module.__name__}")
            found[name] = plugin
            where[name] = module.__name__
    return dict(sorted(found.items()))


OWN_TASKS_ENV = "TRANSFERBENCH_OWN_TASKS"


def declare_task(spec: dict[str, Any]) -> None:
    """Make a suite-declared task (a ``bench.owndata`` spec) findable by ``get`` here and in worker processes."""
    specs = {s["name"]: s for s in _declared_specs()}
    specs[spec["name"]] = spec
    os.environ[OWN_TASKS_ENV] = json.dumps(list(specs.values()), sort_keys=True, default=str)


def _declared_specs() -> list[dict[str, Any]]:
    return json.loads(os.environ.get(OWN_TASKS_ENV) or "[]")


@lru_cache(maxsize=32)
def _own_task(spec_json: str) -> Any:
    from bench.owndata import make_task

    return make_task(json.loads(spec_json))


def get(kind: str, name: str) -> Any:
    """Look a plugin up by name; an unknown name raises UserError listing the available ones."""
    table = plugins(kind)
    if name in table:
        return table[name]
    if kind == "task":
        for spec in _declared_specs():
            if spec["name"] == name:
                return _own_task(json.dumps(spec, sort_keys=True, default=str))
    raise UserError(unknown_name_message(kind, name, list(table)))


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; available: {', '.join(valid)}"
