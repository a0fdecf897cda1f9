"""The suite's own rules (CONTRIBUTING.md, "Tests"), checked on its source so they do not erode."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

from airflow_provider_patsnap.hooks._shared import Cancellation, SystemClock

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


def test_the_unit_tier_refuses_a_real_timed_wait() -> None:
    """How the real clock waits (hooks/_cancel.py): an Event's timed wait. The fake clock never does."""
    with pytest.raises(AssertionError, match=r"must not wait 1\.0 s for real"):
        SystemClock().wait(threading.Event(), 1.0)
    with pytest.raises(AssertionError, match="must not wait"):
        Cancellation(SystemClock()).sleep(0.5)
    assert threading.Event().wait(0.01) is False  # threads handing work over may wait that long
