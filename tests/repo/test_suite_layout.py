"""The suite's own rules (CONTRIBUTING.md, "Tests"), checked on its source so they do not erode."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_no_test_module_imports_from_a_conftest() -> None:
    offenders = {
        str(path.relative_to(TESTS)): sorted(
            module for module in modules if module.split(".")[-1] == "conftest"
        )
        for path in sorted(TESTS.rglob("*.py"))
        if (modules := imported_modules(path))
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}
