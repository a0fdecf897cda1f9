"""History stays well-formed when shards commit batches in another order than they fetched them.

Two sinks write one table, as two shards do; the test chooses each batch's fetch time and which sink
commits first, on every engine (SQLite, PostgreSQL, MariaDB through both MySQL clients, DuckDB).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from airflow_provider_patsnap.endpoints import AWARD, Row
from airflow_provider_patsnap.sinks.base import FetchedBatch, FetchedPatent
from airflow_provider_patsnap.sinks.sql import SqlSink
from airflow_provider_patsnap.sinks.state import FetchState
from tests.sql_engines import ENGINES, engine_connection, records

MIDNIGHT, NINE, TEN = "2026-01-01T00:00:00+00:00", "2026-01-01T09:00:00+00:00", "2026-01-01T10:00:00+00:00"
MOMENTS = [
    f"2026-01-01T{hour}:{minute}:00+00:00" for hour in ("08", "09", "10", "11") for minute in ("00", "30")
]


@pytest.fixture(params=ENGINES)
def warehouse(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_HO", engine_connection(request.param, request, "ho"))
    return "ho"


def shard() -> SqlSink:
    state = FetchState("P032", "patent_number", {})
    return SqlSink("ho", "patsnap_award", AWARD.columns, endpoint="P032", write_mode="history", state=state)


def land(sink: SqlSink, fetched_at: str, referrer: str | None) -> None:
    """One batch for CN1A fetched at ``fetched_at``: one award from ``referrer``, or no data (None)."""
    rows: list[Row] = []
    if referrer is not None:
        award = {
            "award_name": "Gold",
            "award_level": "gold",
            "award_session": "2020",
            "award_referrer": referrer,
        }
        rows = AWARD.map_patent(
            {"pn": "CN1A", "patent_id": "id-1", "patent_award_data": [award]}, fetched_at
        ).rows
    echoed = "CN1A" if rows else None
    sink.write_batch(
        rows, (), FetchedBatch([FetchedPatent("CN1A", "CN1A", echoed, len(rows), False)], fetched_at)
    )


def versions() -> list[tuple[Any, ...]]:
    sql = "SELECT record_key, award_referrer, valid_from, valid_to, is_current FROM patsnap_award"
    return records("ho", sql)


@pytest.mark.parametrize("later_answer", ["changed", "no data"])
def test_a_batch_committed_after_a_later_fetched_one_keeps_every_as_of_answer_single(
    warehouse: str, later_answer: str
) -> None:
    with shard() as first:
        land(first, MIDNIGHT, "old")
    with shard() as fetched_at_nine, shard() as fetched_at_ten:
        land(fetched_at_ten, TEN, "new" if later_answer == "changed" else None)  # commits first
        land(fetched_at_nine, NINE, "old")  # fetched earlier, commits later

    table = versions()
    assert all(valid_to is None or valid_to >= valid_from for _, _, valid_from, valid_to, _ in table), table
    for moment in MOMENTS:
        known = Counter(
            key
            for key, _, valid_from, valid_to, _ in table
            if valid_from <= moment and (valid_to is None or valid_to > moment)
        )
        assert all(count == 1 for count in known.values()), (moment, table)
    assert [referrer for _, referrer, *_, current in table if current] == ["old"]  # the last commit's answer
    # It cannot start before what it follows ends: the later fetch's time, not its own.
    assert [valid_from for _, _, valid_from, _, current in table if current] == [TEN]
