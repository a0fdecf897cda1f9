"""A patent is remembered as fetched only when every record of it landed, and a state row that cannot be
trusted (unreadable, or written by a clock that was ahead) never keeps a patent from being fetched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.operators import _batch
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from tests.helpers import OperatorClock, ScriptedVendor, fresh_postgres_database, numbers

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> OperatorClock:
    fake = OperatorClock(START)
    monkeypatch.setattr(_batch, "utc_now", fake)
    return fake


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "sqlite":
        conn = f'{{"conn_type": "sqlite", "host": "{tmp_path / "st.db"}"}}'
    else:
        conn = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    monkeypatch.setenv("AIRFLOW_CONN_ST", conn)
    return "st"


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedVendor]:
    scripted = ScriptedVendor()
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", scripted.connection_json())
    yield scripted
    scripted.close()


def awards(pn: str, *names: Any) -> dict[str, Any]:
    return {"pn": pn, "patent_id": f"id-{pn}", "patent_award_data": [{"award_name": name} for name in names]}


def run(ids: list[str], **kwargs: Any) -> dict[str, Any]:
    operator = PatsnapAwardOperator(
        task_id="awards", patent_numbers=ids, sql_conn_id="st", refresh_after="7d", max_rejects=100, **kwargs
    )
    return dict(operator.execute(context={}))


def stored(sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in BaseHook.get_connection("st").get_hook().get_records(sql)]


def test_a_patent_with_a_rejected_record_is_fetched_again_until_every_record_lands(
    warehouse: str, vendor: ScriptedVendor, clock: OperatorClock
) -> None:
    ids = numbers(20)
    for pn in ids:
        vendor.objects[pn] = awards(pn, "Gold")
    vendor.objects[ids[0]] = awards(ids[0], "Gold", {"not": "text"})  # one record the mapping rejects
    first = run(ids)
    assert first["rejects"] == 1
    clock.now += timedelta(days=1)
    vendor.objects[ids[0]] = awards(ids[0], "Gold", "Silver")  # the vendor fixed it
    second = run(ids)
    assert (second["skipped_fresh"], second["requested"] - second["skipped_fresh"]) == (19, 1)
    assert sorted(
        name for (name,) in stored(f"SELECT award_name FROM patsnap_award WHERE pn = '{ids[0]}'")
    ) == [
        "Gold",
        "Silver",
    ]
    clock.now += timedelta(days=1)
    assert run(ids)["skipped_fresh"] == 20  # every record landed: remembered now


def test_a_state_row_that_cannot_be_read_means_fetch_again_with_one_warning(
    warehouse: str,
    vendor: ScriptedVendor,
    clock: OperatorClock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = numbers(10)
    for pn in ids:
        vendor.objects[pn] = awards(pn, "Gold")
    run(ids)
    hook = BaseHook.get_connection("st").get_hook()
    hook.run(f"UPDATE patsnap_award_state SET found = NULL WHERE patent IN ('{ids[0]}', '{ids[1]}')")
    hook.run(f"UPDATE patsnap_award_state SET fetched_at = 'yesterday' WHERE patent = '{ids[2]}'")
    clock.now += timedelta(hours=1)
    again = run(ids)  # raised TypeError before
    assert again["skipped_fresh"] == 7 and vendor.billed == 10 + 3
    log = caplog.text + capsys.readouterr().out
    assert "patsnap_award_state: 3 state row(s) could not be read" in log


def test_a_fetch_time_in_the_future_is_not_fresh(
    warehouse: str, vendor: ScriptedVendor, clock: OperatorClock
) -> None:
    ids = numbers(20)
    for pn in ids:
        vendor.objects[pn] = awards(pn, "Gold")
    clock.now = START + timedelta(days=365)  # a clock a year ahead writes the state
    run(ids)
    clock.now = START  # corrected
    assert run(ids)["skipped_fresh"] == 0  # 0 of 20 were refetched before
    clock.now += timedelta(hours=1)
    assert run(ids)["skipped_fresh"] == 20  # fetched now, at the right time: fresh again
