"""The layers of src/pinsights (docs/architecture.md): imports run one way, down, and never in a circle.

Read from the source (an AST walk, nothing imported), so a forbidden import fails here even when it
sits inside a function, where only the code path that reaches it would notice. The layers, top
first; a module may import its own layer's modules and any layer below it:

    cli                        the command line: parses, then calls everything below
    server | client            peers that never import each other
    store                      the published files, their formats and their lock; publishes builds
    engine                     computes snapshots' documents (handed a publisher, never the store)
    data                       the input contract
    contract, pinsights        the wire models and the package's version: import nothing of ours

``synthetic`` (the generator) stands beside them: it may import data and contract, and only the
command line (and the tests) may import it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "pinsights"

#: Layer of each top-level part of the package, lowest first; equal numbers are the same layer.
LAYER = {
    "pinsights": 0,
    "pinsights.contract": 0,
    "pinsights.data": 1,
    "pinsights.engine": 2,
    "pinsights.store": 3,
    "pinsights.server": 4,
    "pinsights.client": 4,
    "pinsights.cli": 5,
}
#: Parts of one layer that must not import each other.
PEERS = {frozenset({"pinsights.server", "pinsights.client"})}
#: What the generator may import, and who may import it.
SYNTHETIC = "pinsights.synthetic"
SYNTHETIC_MAY_IMPORT = {"pinsights", "pinsights.contract", "pinsights.data", SYNTHETIC}
SYNTHETIC_IMPORTED_BY = {"pinsights.cli", SYNTHETIC}

#: Deliberate import circles, each with its reason (docs/architecture.md). None today: the pandas
#: views import pandas lazily, and pandas is not ours.
ALLOWED_CIRCLES: dict[frozenset[str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str  # dotted module name (a package's __init__ is the package's name)
    line: int
    type_checking: bool  # inside ``if TYPE_CHECKING:`` (no run-time edge)

    def __str__(self) -> str:
        path = self.importer.replace(".", "/")
        return f"{path} line {self.line}: imports {self.imported}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted((SRC / PACKAGE).rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The module of ours that ``name`` names: itself, or the nearest enclosing module."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node below ``node``, and whether it sits under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.body:
                yield statement, True
                yield from _walk(statement, True)
            for statement in child.orelse:
                yield statement, type_checking
                yield from _walk(statement, type_checking)
            continue
        yield child, type_checking
        yield from _walk(child, type_checking)


def imports_of(module: str) -> list[Import]:
    """Every import of one of our modules in ``module``, at any depth (functions included)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node, type_checking in _walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from package import submodule`` imports the submodule.
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            resolved = _resolve(target)
            edge = Import(module, resolved or "", node.lineno, type_checking)
            if resolved is not None and resolved != module and edge not in found:
                found.append(edge)
    return found


IMPORTS = [edge for module in MODULES for edge in imports_of(module)]


def part_of(module: str) -> str:
    """The top-level part a module belongs to: ``pinsights.engine.build`` -> ``pinsights.engine``."""
    parts = module.split(".")
    return ".".join(parts[:2])


def violation(edge: Import) -> str | None:
    """Why ``edge`` breaks the layering, or None if it is allowed."""
    importer, imported = part_of(edge.importer), part_of(edge.imported)
    if importer == imported:
        return None
    if imported == SYNTHETIC:
        return None if importer in SYNTHETIC_IMPORTED_BY else "only the cli imports the generator"
    if importer == SYNTHETIC:
        return None if imported in SYNTHETIC_MAY_IMPORT else "the generator imports only data"
    if importer not in LAYER or imported not in LAYER:
        return f"{importer if importer not in LAYER else imported} has no layer: add it to LAYER"
    if frozenset({importer, imported}) in PEERS:
        return f"{importer} and {imported} are peers and never import each other"
    if LAYER[imported] > LAYER[importer]:
        return f"an upward import ({importer} is below {imported})"
    if importer == "pinsights.contract":
        return "contract.py imports nothing of ours"
    return None


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {part_of(module) for module in MODULES}

    assert parts <= {*LAYER, SYNTHETIC}, f"add to LAYER: {sorted(parts - {*LAYER, SYNTHETIC})}"


def test_imports_run_down_the_layers() -> None:
    broken = [f"{edge}: {why}" for edge in IMPORTS if (why := violation(edge))]

    assert not broken, "\n".join(broken)


def test_the_contract_imports_nothing_of_ours() -> None:
    assert [str(edge) for edge in IMPORTS if edge.importer == "pinsights.contract"] == []


def _circles() -> list[list[str]]:
    """Strongly connected groups of modules (more than one) in the run-time import graph."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for edge in IMPORTS:
        if not edge.type_checking:
            graph[edge.importer].add(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph is a few hundred edges
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return groups


def test_no_import_circles_except_the_documented_ones() -> None:
    circles = [group for group in _circles() if frozenset(group) not in ALLOWED_CIRCLES]

    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(g) for g in circles)


@pytest.mark.parametrize(
    ("importer", "imported", "why"),
    [
        ("pinsights.engine.build", "pinsights.server.app", "upward"),
        ("pinsights.engine.build", "pinsights.store", "upward"),
        ("pinsights.store", "pinsights.cli.errors", "upward"),
        ("pinsights.client._base", "pinsights.server.errors", "peers"),
        ("pinsights.contract", "pinsights.client", "upward"),
        ("pinsights.server.app", "pinsights.synthetic.generate", "generator"),
        ("pinsights.synthetic.generate", "pinsights.engine.build", "generator"),
    ],
)
def test_the_rules_refuse_an_upward_import(importer: str, imported: str, why: str) -> None:
    """The checks above can fail: each forbidden kind of edge is named as such."""
    reason = violation(Import(importer, imported, 1, False))

    assert reason is not None and why in reason


def test_the_walk_finds_imports_inside_functions_and_type_checking_blocks() -> None:
    """A lazy import is an import: found, and marked run-time unless under TYPE_CHECKING."""
    found = {(e.imported, e.type_checking) for e in imports_of("pinsights.cli.server_commands")}

    assert ("pinsights.server.settings", True) in found  # ``if TYPE_CHECKING:`` at the top
    assert ("pinsights.server.runner", False) in found  # inside ``_serve``


#: GUIDE: one concept per module, none over this many lines.
MAX_MODULE_LINES = 600


def test_no_module_is_over_600_lines() -> None:
    sizes = {
        module: len(path.read_text(encoding="utf-8").splitlines())
        for module, path in MODULES.items()
    }
    too_long = {module: n for module, n in sizes.items() if n > MAX_MODULE_LINES}

    assert not too_long, f"split by concept: {too_long}"
