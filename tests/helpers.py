"""Helpers shared by every tier: generators, expected rows, task-instance stand-ins, `airflow` runs.

Imported by test modules (never by a conftest), so a fixture file never hides what a test depends on.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from airflow_provider_patsnap.endpoints import Endpoint, IdKind
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sandbox.data import patent_object
from scripts.airflow_env import airflow_env as repository_airflow_env

REPO_ROOT = Path(__file__).resolve().parent.parent
CONN_ENV = "AIRFLOW_CONN_PATSNAP_DEFAULT"
CREATE_PATH = "/patent-valuation-data/patent-report/task/create-no-logo"
STATUS_PATH = "/patent-valuation-data/patent-report/job_id/status"
AIRFLOW_BIN = str(Path(sys.executable).parent / "airflow")


def numbers(count: int, prefix: str = "CN", start: int = 100000000) -> list[str]:
    """``count`` distinct, valid patent numbers (the sandbox has data for most of them)."""
    return [f"{prefix}{start + i}A" for i in range(count)]


def business(sandbox: Sandbox, path: str) -> list[Any]:
    """The sandbox's records of requests to ``path``."""
    return [record for record in sandbox.requests if record.path == path]


def creates(sandbox: Sandbox) -> int:
    """How many report jobs were asked for (each one is paid)."""
    return len(business(sandbox, CREATE_PATH))


def expected_rows(
    endpoint: Endpoint, ids: list[str], kind: IdKind = "patent_number", lang: str = "en"
) -> list[dict[str, Any]]:
    """The rows the operator must land for ``ids``, from the sandbox's own data (``fetched_at`` dropped)."""
    rows = []
    for value in ids:
        patent = patent_object(endpoint.code, kind, value, lang)  # type: ignore[arg-type]
        if patent is not None:
            rows.extend(without_fetched_at(row) for row in endpoint.rows(patent, ""))
    return rows


def without_fetched_at(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "fetched_at"}


def sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((without_fetched_at(row) for row in rows), key=lambda row: row["record_key"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def wait_until_finished(job_id: str, timeout: float = 20.0) -> None:
    """Poll (as a test, not through the code under test's waiting) until the job is done or failed."""
    from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

    hook = PatsnapHook()
    deadline = time.monotonic() + timeout
    while hook.get_report_status(job_id)["job_status"] not in (2, 3):
        assert time.monotonic() < deadline, f"job {job_id} did not finish in {timeout} s"
        time.sleep(0.1)


def airflow(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the venv's ``airflow`` CLI with ``env``; never reads stdin."""
    return subprocess.run(
        [AIRFLOW_BIN, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def airflow_env(home: Path, dags: Path, **extra: str) -> dict[str, str]:
    """A fresh, migrated metadata DB in ``home`` with DAGs from ``dags``; ``extra`` is added to the env."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **repository_airflow_env(home, dags_folder=dags),
        "PYTHONPATH": str(REPO_ROOT),
        **extra,
    }
    migrated = airflow(["db", "migrate"], env)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return env
