"""The import graph of ``src/dlia``: packages stack one way (docs/engine.md, "Layering").

Every ``import`` and ``from ... import`` is read with ``ast`` (function-level ones included, since a
lazy import is still a dependency), each resolved to the top-level package it reaches. A package may
import only packages of a lower rank; a higher one registers what a lower one needs (an ONNX
converter, ``Optimizer.minimize``) instead of being imported by it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dlia

SRC = Path(dlia.__file__).parent

#: rank of each top-level package (a module such as ``interop.py`` counts as a package)
RANKS = {
    "backend": 0,
    "core": 1,
    "nn": 2, "optim": 2, "interop": 2, "signal": 2, "text": 2,
    "graph": 3,
    "io": 4,
    "models": 5, "data": 5, "viz": 5,
    "cli": 6,
}
FACADE = "dlia"  # dlia/__init__.py: ``import dlia`` gives the engine (backend and core) eagerly


def _target(module: str) -> str | None:
    """The package a dotted module name reaches (``FACADE`` for ``dlia`` itself), None outside dlia."""
    parts = module.split(".")
    if parts[0] != "dlia":
        return None
    if len(parts) == 1:
        return FACADE
    return parts[1]


def _is_submodule(name: str) -> bool:
    return (SRC / name).is_dir() or (SRC / f"{name}.py").is_file()


def _edges() -> list[tuple[str, str, str, int, bool]]:
    """(importing package, imported package, file, line, at module level) for every import."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        here = FACADE if rel.parts == ("__init__.py",) else rel.parts[0].removesuffix(".py")
        package = ["dlia", *rel.with_suffix("").parts]
        if package[-1] == "__init__":
            package.pop()
        else:
            package = package[:-1]  # the package a relative import starts from
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
                if base == "dlia":  # ``from dlia import nn`` reaches dlia.nn, ``from dlia import Tensor`` the facade
                    targets = [f"dlia.{a.name}" if _is_submodule(a.name) else "dlia" for a in node.names]
                else:
                    targets = [base]
            for t in targets:
                there = _target(t)
                if there is not None and there != here:
                    out.append((here, there, str(rel), node.lineno, id(node) in top))
    return out


def test_every_package_has_a_rank() -> None:
    packages = {p.name.removesuffix(".py") for p in SRC.iterdir()
                if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.name != "__init__.py")}
    assert packages - set(RANKS) == set(), "give each new package a rank in RANKS (and docs/engine.md)"


def test_no_package_imports_a_higher_or_sibling_one() -> None:
    bad = []
    for here, there, where, line, module_level in _edges():
        if here == FACADE:
            # the facade's eager imports are the engine; its lazy ones (``dlia.compile``, ``dlia.nn``) any package
            if module_level and RANKS.get(there, 99) > RANKS["core"]:
                bad.append(f"dlia/{where}:{line}: the dlia package imports {there} when imported")
            continue
        rank = RANKS["core"] if there == FACADE else RANKS.get(there, 99)
        if rank >= RANKS.get(here, -1):
            bad.append(f"dlia/{where}:{line}: {here} (rank {RANKS.get(here)}) imports {there} (rank {rank})")
    assert bad == [], "\n".join(bad)


def test_no_cycles_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for here, there, _, _, module_level in _edges():
        if here != FACADE or module_level:
            graph.setdefault(here, set()).add(there)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        path.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            cycle = visit(n)
            assert cycle is None, "import cycle between packages: " + " -> ".join(cycle)


def test_the_checker_sees_function_level_imports() -> None:
    """Guard for the parser itself: the known shapes of import statements are all resolved."""
    edges = {(h, t) for h, t, *_ in _edges()}
    assert ("nn", "core") in edges and ("cli", "models") in edges
    lazy = [(h, t) for h, t, _, _, top in _edges() if not top]
    assert lazy, "no function-level import found: the walk missed them"
