"""The package's shape: no import cycle (function-local imports included) between
subpackages or between files, and no file over 450 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "celltext"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of celltext that ``path`` imports anywhere (top level or inside functions)."""

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
            found |= {owner(n) for n in names if n in modules} or {owner(node.module)}
        elif isinstance(node, ast.Import):
            found |= {owner(a.name) for a in node.names}
    return {m for m in found if m and m.startswith("celltext")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def _graph(level: str) -> dict[str, set[str]]:
    modules = _modules()

    def key(name: str) -> str:
        return ".".join(name.split(".")[:2]) if level == "package" else name

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if level == "file" and path.name == "__init__.py":
            continue  # a package's __init__ re-exports its own files
        for target in _imports(path, modules):
            into_init = modules[target].name == "__init__.py"
            if key(target) != key(name) and not (level == "file" and into_init):
                graph.setdefault(key(name), set()).add(key(target))
    return graph


@pytest.mark.parametrize("level", ["package", "file"])
def test_no_import_cycles(level):
    graph = _graph(level)
    assert sum(map(len, graph.values())) > (10 if level == "package" else 100)  # really read
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_file_over_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}  # fmt: skip
    assert long == {}
