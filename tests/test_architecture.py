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


# -- private names and shared predictors ------------------------------------------------------
# Attributes that are public API despite the underscore (namedtuple's methods, os._exit), and
# third-party private names used where the library offers no public one, each with its reason.
_PUBLIC_UNDERSCORE = {"_fields", "_asdict", "_replace", "_make", "_exit"}
_THIRD_PARTY_PRIVATE = {
    # torch.onnx.symbolic_helper: how a custom symbolic reads constant arguments
    ("export/onnx.py", "_parse_arg"),
    ("export/onnx.py", "_is_none"),
    # accelerate keeps process-wide singletons; its own tests reset them this way
    ("training/loop.py", "_reset_state"),
}


def _private_uses(source: str, rel: str) -> list[str]:
    """``from celltext.x import _name`` and ``obj._name`` where ``obj`` is not self/cls, in
    the ``source`` of the file ``rel`` (relative to the package)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("celltext"):
            out += [
                f"{rel}:{node.lineno}: imports {node.module}.{a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")
            ]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if own or node.attr.startswith("__") or node.attr in _PUBLIC_UNDERSCORE:
                continue
            if (rel, node.attr) not in _THIRD_PARTY_PRIVATE:
                out.append(f"{rel}:{node.lineno}: {ast.unparse(node.value)}.{node.attr}")
    return out


def _config_assignments(path: Path) -> list[str]:
    """``x.config = ...`` for any ``x`` but ``self`` (a shared predictor changed in place)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for t in targets:
            if isinstance(t, ast.Attribute) and t.attr == "config":
                if not (isinstance(t.value, ast.Name) and t.value.id == "self"):
                    out.append(f"{path}:{node.lineno}: {ast.unparse(t)} = ...")
    return out


def test_no_module_uses_another_modules_private_names():
    found = [
        use
        for p in sorted(ROOT.rglob("*.py"))
        for use in _private_uses(p.read_text(), str(p.relative_to(ROOT)))
    ]
    assert found == []


def test_the_private_name_check_catches_an_import_and_a_call():
    source = "from celltext.x import _hidden\n\ndef f(p):\n    return p._core(self._own)\n"
    assert [u.split(": ", 1)[1] for u in _private_uses(source, "probe.py")] == [
        "imports celltext.x._hidden", "p._core",
    ]  # fmt: skip


def test_no_shared_predictor_config_is_assigned():
    """Options travel per call (``answer(qs, config)``, ``with_config``); the service
    shares one predictor across threads, so nothing may change its ``config``."""
    tests = Path(__file__).resolve().parent
    files = [*ROOT.rglob("*.py"), *tests.rglob("*.py")]
    found = [a for p in sorted(files) for a in _config_assignments(p)]
    assert found == []
    assert _config_assignments(Path(__file__)) == []  # this file is read too


def test_only_the_predictor_sets_its_config_and_only_in_its_constructor():
    tree = ast.parse((ROOT / "inference" / "predictor.py").read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Predictor"]
    setters = [
        f.name
        for f in cls.body
        if isinstance(f, ast.FunctionDef)
        for node in ast.walk(f)
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Attribute) and t.attr == "config"
    ]
    assert setters == ["__init__"]
