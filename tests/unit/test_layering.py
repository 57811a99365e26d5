"""The import contract: the layering of kdns's packages, read from the source (every import,
including those inside functions).

- `kdns.dns` and `kdns.cluster` are the pure core: they import no I/O module and nothing of kdns
  outside the core, so their behaviour is a function of literal values.
- Sockets live in `kdns.transport` (HTTP listeners use aiohttp's own, also there).
- No import cycle between modules, and none between kdns's subpackages.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "kdns"

IO_MODULES = frozenset(
    [
        "aiohttp",
        "asyncio",
        "http",
        "kubernetes_asyncio",
        "prometheus_client",
        "selectors",
        "socket",
        "socketserver",
        "ssl",
        "subprocess",
        "urllib",
        "uvloop",
    ]
)
PURE = ("kdns.dns", "kdns.cluster")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> Iterator[str]:
    """Every module `name` imports; `from pkg import sub` counts as importing pkg.sub."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    yield f"{base}.{alias.name}"


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def graph() -> dict[str, set[str]]:
    return {name: {m for m in imports(name) if m in MODULES} for name in MODULES}


def subpackage(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith(PURE)])
def test_the_pure_core_does_no_io(name: str) -> None:
    io = sorted(m for m in imports(name) if m.split(".")[0] in IO_MODULES)
    assert io == [], f"{name} imports I/O modules {io}"
    upward = sorted(
        m for m in imports(name) if in_package(m, "kdns") and not m.startswith(PURE) and m != "kdns"
    )
    assert upward == [], f"{name} imports {upward} from outside the pure core"


def test_sockets_live_in_transport() -> None:
    users = sorted(
        name
        for name in MODULES
        if "socket" in set(imports(name)) and not in_package(name, "kdns.transport")
    )
    assert users == []


def test_no_import_cycle_between_modules() -> None:
    assert cycles(graph()) == []


def test_no_import_cycle_between_subpackages() -> None:
    edges: dict[str, set[str]] = {}
    for name, targets in graph().items():
        edges.setdefault(subpackage(name), set()).update(
            subpackage(t) for t in targets if subpackage(t) != subpackage(name)
        )
    edges.pop("kdns", None)  # the package itself holds only the version
    for targets in edges.values():
        targets.discard("kdns")
    assert cycles(edges) == []


def test_the_contract_sees_imports() -> None:
    # Guards the reader above: a known edge must be found, or every test here passes vacuously.
    assert "kdns.dns.wire" in graph()["kdns.cluster.answer"] | graph()["kdns.server.dispatch"]
    assert "asyncio" in set(imports("kdns.server.app"))


MAX_LINES = 500


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_500_lines(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by job"
