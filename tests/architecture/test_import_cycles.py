"""No import circle among first-party modules, function-level imports included.

import-linter stops at package borders and skips type-only imports, so a circle inside a package (a module that
imports another at function level to dodge the cycle at import time) passes it. This test reads every module with
``ast``, resolves ``from x import y`` to the submodule ``x.y`` where there is one, and looks for strongly connected
components (Tarjan) in the graph of imports between first-party modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "strategies", "tasks", "report")


def _module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module name of ``from <...> import``, relative imports included."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _owner(name: str, known: set[str]) -> str | None:
    """The longest known module that ``name`` is or lies in (``bench.run.cell.Cell`` -> ``bench.run.cell``)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the first-party modules it imports anywhere in its text (not the packages above them)."""
    files = _module_files()
    known = set(files)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path, node)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
            for target in targets:
                owner = _owner(target, known)
                if owner and owner != module:
                    graph[module].add(owner)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _cycles_in(package: str) -> list[list[str]]:
    return [c for c in cycles(import_graph()) if any(m.split(".")[0] == package for m in c)]


def test_tarjan_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "bench.results" in graph["report"]  # report/__init__.py imports it at the top
    assert len(graph) > 40


@pytest.mark.parametrize("package", ["bench", "report", "strategies", "tasks"])
def test_no_import_circle(package):
    found = _cycles_in(package)
    print("\n".join(" -> ".join(c) for c in cycles(import_graph())))  # every circle, for the record (-s shows it)
    assert not found, f"import circles in {package}: {found}"


def test_strategies_import_the_contracts_and_the_kit_only():
    """A strategy file imports ``bench.core`` (the contracts) and ``bench.run.kit`` (the one helper module)."""
    graph = import_graph()
    allowed = {"bench.run.kit"}
    for module, targets in graph.items():
        if module.startswith("strategies."):
            other = sorted(t for t in targets if t not in allowed and not t.startswith("bench.core")
                           and t.split(".")[0] == "bench")
            assert not other, f"{module} imports {other}; use bench.core or bench.run.kit"


def test_core_imports_nothing_above_it():
    """The contracts layer stands alone: bench.core imports no other first-party package (type-only included)."""
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("bench.core"):
            assert all(t.startswith("bench.core") or t == "bench" for t in targets), (module, targets)
