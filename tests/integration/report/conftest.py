"""Fixtures for the value report (R002) tests: the plugin's sandbox, and stand-ins for a task instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_patsnap.sandbox import Sandbox
from tests.helpers import CONN_ENV, FakeTaskInstance, FakeTaskStateStore


@pytest.fixture
def start_sandbox(
    patsnap_sandbox_factory: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Sandbox]:
    """Start a sandbox (the plugin's factory) with the given config and point ``patsnap_default`` at it
    (no hook retries; no client rate limit unless ``client_qps`` is given)."""

    def start(max_retries: int = 0, client_qps: float = 0, **config: Any) -> Sandbox:
        # A job never finishes by itself: its clock stands still until a test moves it
        # (finish_report_jobs*, which advance by report_delay).
        sandbox = patsnap_sandbox_factory(**{"report_delay": 60, "frozen_clock": True, **config})
        monkeypatch.setenv(CONN_ENV, sandbox.connection_json(max_retries=max_retries, qps=client_qps))
        return sandbox

    return start


@pytest.fixture
def sandbox(start_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return start_sandbox()


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()}
