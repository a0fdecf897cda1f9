"""Fixtures for the value report (R002) tests: a running sandbox, and stand-ins for a task instance."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_patsnap.sandbox import Sandbox, SandboxConfig
from tests.helpers import FakeTaskInstance, FakeTaskStateStore


@pytest.fixture
def start_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Sandbox]]:
    """Start a sandbox with the given config and point ``patsnap_default`` at it (no hook retries)."""
    running: list[Sandbox] = []

    def start(max_retries: int = 0, **config: Any) -> Sandbox:
        # A job never finishes by itself: a test moves the sandbox's clock (finish_report_jobs*).
        sandbox = Sandbox(SandboxConfig(**{"report_delay": 60, **config})).start()
        running.append(sandbox)
        monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", sandbox.connection_json(max_retries=max_retries))
        return sandbox

    yield start
    for sandbox in running:
        sandbox.stop()


@pytest.fixture
def sandbox(start_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return start_sandbox()


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()}
