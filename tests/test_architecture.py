"""The house rules the code must keep, checked on its source (fast, no server).

- `common/` has no import circle, counting imports inside functions too (a lazy import is still a dependency);
- no module under `common/` is over 300 lines, and a function's main.py stays a screen long;
- no adapter imports the factory that picks adapters (`common.adapters.backends`);
- the auth-only functions never import numpy, Pillow or LiteRT, even lazily through `common`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from infra.targets import REPO, TARGETS

COMMON = REPO / "common"
HEAVY = ("numpy", "PIL", "ai_edge_litert", "tensorflow", "keras")
LIGHT_TARGETS = ("register", "tokens", "files_api")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in COMMON.rglob("*.py")}


def imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Every module a file imports (`from common import x` counts as common.x when x is a module)."""
    known = modules()
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in imports(path) if m in known and m != name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_in_common() -> None:
    assert cycles(graph()) == []


def test_modules_stay_small() -> None:
    big = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > 300}
    assert big == {}
    mains = {t.source: len(t.source.read_text().splitlines()) for t in TARGETS.values()}
    assert max(mains.values()) <= 80, mains


def test_adapters_do_not_import_the_factory() -> None:
    edges = graph()
    for package in ("common.records", "common.adapters.storage", "common.adapters.queue"):
        for name, deps in edges.items():
            if name.startswith(package + "."):
                assert "common.adapters.backends" not in deps, name


def test_light_functions_import_no_numpy() -> None:
    known = modules()
    for target in LIGHT_TARGETS:
        seen: set[str] = set()
        todo = list(imports(TARGETS[target].source))
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in known:
                todo.extend(imports(known[name]))
        heavy = {n for n in seen if n.split(".")[0] in HEAVY}
        assert not heavy, (target, heavy)


def test_every_documented_module_command_exists() -> None:
    """`python -m X` in the READMEs and docstrings names a module that exists (a docstring once named
    `common.sqs_relay`, which never did)."""
    import importlib.util
    import re

    sources = [REPO / "README.md", REPO / "client" / "README.md", REPO / "noxfile.py",
               *[p for folder in ("common", "infra", "bench", "functions") for p in (REPO / folder).rglob("*.py")]]
    named = {m for path in sources for m in re.findall(r"python3? -m ([a-zA-Z_][\w.]*)", path.read_text())}
    missing = sorted(m for m in named if m != "pip" and importlib.util.find_spec(m) is None)
    assert named and not missing, f"documented `python -m` commands with no module: {missing}"
