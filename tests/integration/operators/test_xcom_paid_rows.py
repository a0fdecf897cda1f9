"""Rows that were paid for reach the user even when the task fails after they came back: with XCom as
the destination they are pushed under the key ``rows``; a file run keeps them beside its file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.exceptions import PatsnapBudgetError, PatsnapQuotaError, PatsnapRejectsError
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sandbox import Sandbox
from tests.helpers import (
    FakeTaskInstance,
    ScriptedVendor,
    business,
    envelope,
    expected_rows,
    http_response,
    numbers,
    sorted_rows,
)

AWARD = ENDPOINTS["P032"]


def test_a_budget_stop_keeps_the_rows_it_paid_for(patsnap: Sandbox) -> None:
    ti = FakeTaskInstance()
    operator = PatsnapAwardOperator(task_id="awards", patent_numbers=numbers(250), max_billed_units=120)
    with pytest.raises(PatsnapBudgetError):
        operator.execute(context={"ti": ti})
    asked = [pn for record in business(patsnap, AWARD.path) for pn in record.ids]
    kept = ti.xcom["rows"]
    assert kept and sorted_rows(kept) == sorted_rows(expected_rows(AWARD, asked))
    assert len({row["pn"] for row in kept}) <= 120  # no more than the budget bought


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedVendor]:
    vendor = ScriptedVendor()
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", vendor.connection_json())
    yield vendor
    vendor.close()


def award(pn: str, name: Any) -> dict[str, Any]:
    return {"pn": pn, "patent_id": f"id-{pn}", "patent_award_data": [{"award_name": name}]}


def test_too_many_rejects_keep_the_rows_that_landed(scripted: ScriptedVendor) -> None:
    ids = numbers(30)
    for pn in ids[:20]:
        scripted.objects[pn] = award(pn, "Gold")
    for pn in ids[20:]:
        scripted.objects[pn] = award(pn, {"not": "text"})  # each record becomes a reject
    ti = FakeTaskInstance()
    operator = PatsnapAwardOperator(task_id="awards", patent_numbers=ids, max_rejects=5)
    with pytest.raises(PatsnapRejectsError):
        operator.execute(context={"ti": ti})
    assert sorted(row["pn"] for row in ti.xcom["rows"]) == sorted(ids[:20])


def test_a_run_that_fails_before_any_row_pushes_nothing(scripted: ScriptedVendor) -> None:
    ti = FakeTaskInstance()
    with pytest.raises(PatsnapBudgetError):
        PatsnapAwardOperator(task_id="awards", patent_numbers=numbers(5), max_billed_units=0).execute(
            context={"ti": ti}
        )
    assert "rows" not in ti.xcom and scripted.calls == 0


def test_a_file_run_stopped_by_a_fatal_error_keeps_its_paid_rows_beside_the_file(
    scripted: ScriptedVendor, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = numbers(300)
    for pn in ids:
        scripted.objects[pn] = award(pn, "Gold")
    answer = scripted.server.default

    def quota_after_two_calls(connection: Any, request: Any) -> None:
        if scripted.calls >= 2:
            body = envelope(status=False, error_code=67200005, error_msg="balance exhausted")
            connection.sendall(http_response(200, body))
            return
        answer(connection, request)

    scripted.server.default = quota_after_two_calls
    target = tmp_path / "awards.jsonl"
    operator = PatsnapAwardOperator(task_id="awards", patent_numbers=ids, output_path=str(target), qps=None)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        scripted.server.connection_json(password="sk-scripted", qps=0, max_retries=0, concurrency=1),
    )
    with pytest.raises(PatsnapQuotaError):
        operator.execute(context={})
    assert not target.exists()  # a failed run never stands at the path
    kept = [json.loads(line) for line in (tmp_path / "awards.partial.jsonl").read_text().splitlines()]
    assert sorted(row["pn"] for row in kept) == sorted(ids[:200])  # the two batches answered and paid for
