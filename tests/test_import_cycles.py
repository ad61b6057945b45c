"""Imports inside muse flow one way: no module reaches back to one that imports it, and the
layers (package -> store -> data -> runs, from the bottom) are imported only downwards.

The graph counts every `import` of a muse module, at module level or inside a function, so an
import moved into a function to dodge a cycle is still a cycle here. Function-level imports stay
allowed for what they are good for (the CLI and train.py not loading torch before they need it).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "muse"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The muse modules one module imports (a `from package import module` names the module)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            found |= {f"{source}.{alias.name}" for alias in node.names}
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imported(ast.parse(path.read_text()), name, path.name == "__init__.py", modules)
            for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_function_level_imports_count():
    tree = ast.parse("def f():\n    from muse.b import thing\n")
    assert imported(tree, "muse.a", False, {"muse.a", "muse.b"}) == {"muse.b"}


def test_no_import_cycle_in_muse():
    graph = import_graph()
    assert "muse.runs.train" in graph  # the walk sees the package
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


# Layers from the bottom: a module imports only from its own layer or those below it.
LAYERS = ("muse.package", "muse.store", "muse.data", "muse.runs")


def layer(module: str) -> int | None:
    for index, name in enumerate(LAYERS):
        if module == name or module.startswith(name + "."):
            return index
    return None


def test_imports_flow_down_the_layers():
    upward = [f"{module} -> {dep}" for module, deps in sorted(import_graph().items())
              for dep in sorted(deps)
              if layer(module) is not None and layer(dep) is not None
              and layer(dep) > layer(module)]
    assert upward == []


@pytest.mark.slow  # imports muse afresh in a new interpreter
def test_the_package_and_store_sides_do_not_import_torch():
    code = ("import importlib, pkgutil, sys, muse.package, muse.store\n"
            "for pkg in (muse.package, muse.store):\n"
            "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
            "        importlib.import_module(m.name)\n"
            "print('torch' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
