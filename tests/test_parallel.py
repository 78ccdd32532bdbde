"""The suite's schedule (tests/parallel.py) names tests and modules that exist: a renamed test
would silently fall back to the default cost and be scheduled last, making the run longer."""

from __future__ import annotations

import ast
from pathlib import Path

from tests import parallel

TESTS = Path(__file__).parent


def _test_functions(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_scheduled_cost_names_a_module_or_test_that_exists() -> None:
    missing = []
    for unit in parallel.COSTS:
        module, _, function = unit.partition("::")
        path = TESTS / module
        exists = path.is_file() and (
            not function or (module in parallel.SPLIT and function in _test_functions(path))
        )
        if not exists:
            missing.append(unit)
    assert not missing, f"tests/parallel.py COSTS names what does not exist: {missing}"
