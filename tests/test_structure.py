"""The shape of the code base, checked from the source with ``ast`` (nothing is imported): no import cycle, no
module reaching into another module's private names, and every module small enough to read in one sitting.

An import counts wherever it stands (a function-level import closes a cycle just as well: the two modules still
cannot be understood apart). ``from a.b import c`` depends on the module ``a.b.c`` when there is one, else on
``a.b``; a package's ``__init__`` is not counted as imported by its submodules' imports, since Python runs it
first anyway and it depends on them, not they on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "esrkit"

MAX_LINES = 400
MAX_CLI_LINES = 150  # cli/ commands parse arguments, call one library function and print

# Modules another change is splitting; remove each entry when that change is merged (the test then holds it).
TOO_LONG_FOR_NOW: set[str] = set()  # none are left (infer/backends.py became the infer/backends/ package)
# (importing module, the private name it takes): none are left.
PRIVATE_FOR_NOW: set[tuple[str, str]] = set()


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _graph() -> tuple[dict[str, set[str]], list[tuple[str, str, int]]]:
    """Each module's imports of other esrkit modules, and every use of another module's private name."""
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    private: list[tuple[str, str, int]] = []
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        bound: dict[str, str] = {}  # local name -> the esrkit module it is
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _absolute(module, is_package, node.level, node.module)
                if target.split(".")[0] != "esrkit":
                    continue
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        edges[module].add(f"{target}.{alias.name}")
                        bound[alias.asname or alias.name] = f"{target}.{alias.name}"
                        continue
                    edges[module].add(target)
                    if _is_private(alias.name):
                        private.append((module, f"from {target} import {alias.name}", node.lineno))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        edges[module].add(alias.name)
                        if alias.asname:
                            bound[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                    and _is_private(node.attr)):
                private.append((module, f"{bound[node.value.id]}.{node.attr}", node.lineno))
    for targets in edges.values():
        targets.intersection_update(modules)
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(_graph()[0]) == []


def test_no_module_uses_another_modules_private_names() -> None:
    offenders = [(m, what, line) for m, what, line in _graph()[1] if (m, what.split()[-1]) not in PRIVATE_FOR_NOW]
    assert offenders == [], "make the helper public instead"


def test_the_checker_sees_cycles_and_private_names() -> None:
    """The two checks above are only as good as the graph: a cycle and both forms of private access are found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges, _ = _graph()
    assert "esrkit.train.datasets" in edges["esrkit.train.degradations"]  # a module-level relative import
    assert "esrkit.train.networks" in edges["esrkit.train.trainer"]
    assert "esrkit.train.datasets" in edges["esrkit.train.trainer"]  # a function-level one counts too
    assert _absolute("esrkit.train.trainer", False, 2, "models") == "esrkit.models"
    assert _absolute("esrkit.train", True, 1, "recipe") == "esrkit.train.recipe"


def test_no_module_is_too_long() -> None:
    long = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        limit = MAX_CLI_LINES if rel.startswith("cli/") else MAX_LINES
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit and rel not in TOO_LONG_FOR_NOW:
            long[rel] = lines
    assert long == {}, f"split by concern: at most {MAX_LINES} lines a module, {MAX_CLI_LINES} in cli/"
    assert all((PACKAGE / rel).is_file() for rel in TOO_LONG_FOR_NOW), "an allowlisted module is gone: drop it"
