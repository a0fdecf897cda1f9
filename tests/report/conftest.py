"""Fixtures for the value report (R002) tests: a running sandbox, and stand-ins for a task instance."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_patsnap.sandbox import Sandbox, SandboxConfig

CREATE_PATH = "/patent-valuation-data/patent-report/task/create-no-logo"
STATUS_PATH = "/patent-valuation-data/patent-report/job_id/status"


class FakeTaskInstance:
    """Just enough of a task instance for XCom: a dict per key, kept while the object lives."""

    task_id = "create_report"
    map_index = -1
    stats_tags: dict[str, str] = {}

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int = -1) -> Any:
        assert task_ids == self.task_id
        return self.xcom.get(key)


class FakeTaskStateStore:
    """Airflow 3.3's task_state_store: survives retries (unlike XCom, cleared at each new try)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        assert value is not None
        self.values[key] = value


@pytest.fixture
def start_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Sandbox]]:
    """Start a sandbox with the given config and point ``patsnap_default`` at it (no hook retries)."""
    running: list[Sandbox] = []

    def start(max_retries: int = 0, **config: Any) -> Sandbox:
        # 1.5 s: long enough that "not done yet" holds on a loaded machine, short enough to wait for.
        sandbox = Sandbox(SandboxConfig(**{"report_delay": 1.5, **config})).start()
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


def creates(sandbox: Sandbox) -> int:
    return sum(1 for record in sandbox.requests if record.path == CREATE_PATH)


def wait_until_finished(job_id: str, timeout: float = 20.0) -> None:
    """Poll (as a test, not through the code under test's waiting) until the job is done or failed."""
    from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

    hook = PatsnapHook()
    deadline = time.monotonic() + timeout
    while hook.get_report_status(job_id)["job_status"] not in (2, 3):
        assert time.monotonic() < deadline, f"job {job_id} did not finish in {timeout} s"
        time.sleep(0.1)
