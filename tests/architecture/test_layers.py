"""The layer contracts hold (import-linter), and every module imports on its own, first, in any order."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "strategies", "tasks", "report")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_every_module_imports_first_in_any_order():
    """A circular import shows when the module inside the circle is imported first: import each module first in
    a clean slate of project modules (third-party ones stay loaded, so this takes seconds, not minutes), then all
    of them in two shuffled orders."""
    modules = _modules()
    assert len(modules) > 40
    orders = [modules[:]] + [random.Random(seed).sample(modules, len(modules)) for seed in (0, 1)]
    script = f"""
import importlib, sys
PACKAGES = {PACKAGES!r}
def forget():
    for name in [n for n in sys.modules if n.split('.')[0] in PACKAGES]:
        del sys.modules[name]
for name in {modules!r}:
    forget()
    importlib.import_module(name)
for order in {orders[1:]!r}:
    forget()
    for name in order:
        importlib.import_module(name)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
