"""The house rules the code must keep, checked on its source (fast, no server).

- every package of `common/` has its place in the import contracts of pyproject.toml (the layers, no import
  circle, only http imports the web frameworks, adapters import no feature), which `nox -s lint` checks;
- no module under `common/` is over 300 lines, and a function's main.py stays a screen long;
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


def test_every_package_of_common_is_in_the_layers_contract() -> None:
    """The import contracts (pyproject.toml, checked by `nox -s lint`) replace the hand-written cycle check: they
    hold only if every package of `common/` has its place in the layers, so a new folder cannot slip past them."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["id"]: c for c in config["contracts"]}
    assert {"layers", "web-frameworks", "adapters", "acyclic"} <= set(contracts)
    layered = {name.strip("() ") for layer in contracts["layers"]["layers"] for name in layer.split("|")}
    packages = {p.parent.name for p in COMMON.glob("*/__init__.py")} | {p.stem for p in COMMON.glob("*.py")}
    assert packages - {"__init__"} <= layered, packages - layered
    framework_free = {m.removeprefix("common.") for m in contracts["web-frameworks"]["source_modules"]}
    assert framework_free >= layered - {"http", "bootstrap"}, (layered - {"http", "bootstrap"}) - framework_free


def test_modules_stay_small() -> None:
    big = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > 300}
    assert big == {}
    mains = {t.source: len(t.source.read_text().splitlines()) for t in TARGETS.values()}
    assert max(mains.values()) <= 80, mains


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


def test_domain_errors_carry_no_http_status() -> None:
    """A domain error has a code and a message; its HTTP status and headers are the http layer's one table
    (`common.http.envelope.STATUS`), which names every domain error class (or an ancestor)."""
    from common.core import errors
    from common.http import envelope

    domain = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.AppError)]
    assert not [c for c in domain if "status" in vars(c) or "headers" in vars(c)]
    assert all(any(k in envelope.STATUS for k in c.__mro__) for c in domain)
