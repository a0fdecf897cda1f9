"""The operators' default retry policy under a real `airflow dags test`: a rate limit is retried after
PatSnap's Retry-After (Airflow 3.3), an auth failure ends the task after one try whatever its retries."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from airflow_provider_patsnap._compat import HAS_RETRY_POLICY
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sandbox import Sandbox
from tests.helpers import airflow, airflow_env, business

DAGS = Path(__file__).parent / "dags"
AWARDS = PatsnapAwardOperator.endpoint.path
TASK_RETRY_DELAY = 600.0  # the tasks' own retry_delay: a retry after it would outlast the test


def tries(home: Path, dag_id: str) -> list[tuple[int, str, float | None, str | None, str, str]]:
    """Every try of the DAG's task, oldest first: number, state, the retry delay a policy set (3.3),
    its reason, start and end."""
    policy_columns = "retry_delay_override, retry_reason" if HAS_RETRY_POLICY else "NULL, NULL"
    query = (
        f"SELECT try_number, state, {policy_columns}, start_date, end_date FROM {{table}} "
        "WHERE dag_id = ? AND task_id = 'awards'"
    )
    with sqlite3.connect(home / "airflow.db") as db:
        rows = [
            row
            for table in ("task_instance_history", "task_instance")
            for row in db.execute(query.format(table=table), (dag_id,)).fetchall()
        ]
    return sorted(rows)


def seconds_between(end: str, start: str) -> float:
    return (datetime.fromisoformat(start) - datetime.fromisoformat(end)).total_seconds()


def test_a_rate_limited_task_is_retried_after_patsnaps_retry_after(
    start_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = start_sandbox(fault_rate=1.0, faults=("qps",))  # every call: 429, Retry-After: 1

    def answer_normally_after_the_first_rate_limit() -> None:
        while not business(sandbox, AWARDS):
            time.sleep(0.01)  # waiting for an event (the first call), not for time to pass
        sandbox.set_fault_rate(0)

    threading.Thread(target=answer_normally_after_the_first_rate_limit, daemon=True).start()
    home = tmp_path / "airflow-home"
    # 2.11 has no retry policy: its retry comes after the task's own retry_delay, made short there.
    delay = TASK_RETRY_DELAY if HAS_RETRY_POLICY else 1.0
    env = airflow_env(
        home,
        DAGS,
        AIRFLOW_CONN_PATSNAP_DEFAULT=sandbox.connection_json(max_retries=0),
        PATSNAP_TEST_RETRY_DELAY=str(delay),
    )

    run = airflow(["dags", "test", "patsnap_rate_limited"], env)

    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert len(business(sandbox, AWARDS)) == 2  # the 429, then the answer
    if not HAS_RETRY_POLICY:  # 2.11's `dags test` keeps no history of earlier tries
        assert [row[:2] for row in tries(home, "patsnap_rate_limited")] == [(2, "success")]
        return
    [first, second] = tries(home, "patsnap_rate_limited")
    assert (first[:2], second[:2]) == ((1, "failed"), (2, "success"))  # the history keeps try 1 as failed
    assert first[2] == 1.0  # the delay Airflow stored for this retry: PatSnap's Retry-After
    assert "PatsnapRateLimitError: PatSnap asked to retry after 1 s" in str(first[3])
    assert "Retry policy decision" in output
    assert 1.0 <= seconds_between(first[5], second[4]) < TASK_RETRY_DELAY


def test_an_auth_failure_ends_the_task_after_one_try(sandbox: Sandbox, tmp_path: Path) -> None:
    wrong = json.loads(sandbox.connection_json(max_retries=0))
    home = tmp_path / "airflow-home"
    env = airflow_env(
        home,
        DAGS,
        AIRFLOW_CONN_PATSNAP_DEFAULT=sandbox.connection_json(),
        AIRFLOW_CONN_PATSNAP_WRONG_SECRET=json.dumps({**wrong, "password": "not-the-secret"}),
    )

    run = airflow(["dags", "test", "patsnap_auth_failure"], env)

    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-5000:]
    assert "PatsnapAuthError" in output
    assert [row[:2] for row in tries(home, "patsnap_auth_failure")] == [(1, "failed")]  # retries=2 unused
    assert business(sandbox, AWARDS) == []  # no token, no call
