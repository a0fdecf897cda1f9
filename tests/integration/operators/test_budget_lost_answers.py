"""Answers lost after sending against the sandbox's billing ledger: PatSnap bills a "slow" answer that
arrives after the client's timeout, so the client may owe more than the answers it received.

The summary's ``billed_units`` (answers received) and ``billed_units_unknown`` (answers lost after
sending) bracket what the sandbox billed, and ``max_billed_units`` holds against the ledger even when
lost answers are retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_patsnap.exceptions import PatsnapBudgetError
from airflow_provider_patsnap.hooks._shared import reset_shared_state
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sandbox import Sandbox
from tests.helpers import FakeClock, numbers


@pytest.fixture
def slow_vendor(
    patsnap_sandbox_factory: Callable[..., Sandbox], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    """One call in three answers after the client's 0.2 s timeout, and is billed all the same; the
    client's backoff between retries runs on a fake clock."""
    sandbox = patsnap_sandbox_factory(fault_rate=0.35, faults=("slow",), slow_seconds=0.6, seed=7)
    connection = sandbox.connection_json(qps=0, timeout=0.2, max_retries=6, concurrency=1)
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", connection)
    monkeypatch.setenv("AIRFLOW_CONN_BUDGET_DB", f'{{"conn_type": "sqlite", "host": "{tmp_path / "b.db"}"}}')
    reset_shared_state(clock=FakeClock())
    yield sandbox
    reset_shared_state()


def awards(ids: list[str], **kwargs: Any) -> PatsnapAwardOperator:
    return PatsnapAwardOperator(task_id="awards", patent_numbers=ids, sql_conn_id="budget_db", **kwargs)


def test_what_the_vendor_billed_lies_between_the_answers_received_and_those_lost(
    slow_vendor: Sandbox,
) -> None:
    summary = awards(numbers(600, start=170000000)).execute(context={})
    billed = slow_vendor.stats()["billed_units"]
    assert summary["billed_units_unknown"] > 0  # the seed gives slow answers: the test means something
    assert summary["billed_units"] <= billed <= summary["billed_units"] + summary["billed_units_unknown"]
    assert billed > summary["billed_units"]  # the lost answers were billed: the sandbox says so


def test_a_budget_holds_against_the_ledger_when_lost_answers_are_retried(slow_vendor: Sandbox) -> None:
    with pytest.raises(PatsnapBudgetError) as raised:
        awards(numbers(1000, start=171000000), max_billed_units=300).execute(context={})
    billed = slow_vendor.stats()["billed_units"]
    summary = raised.value.summary
    assert billed <= 300
    assert summary["billed_units"] + summary["billed_units_unknown"] <= 300
    assert summary["billed_units"] <= billed <= summary["billed_units"] + summary["billed_units_unknown"]
    assert "more for answers lost after sending" in str(raised.value)
