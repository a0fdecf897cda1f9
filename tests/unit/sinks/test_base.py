"""The sink contract's own pieces: the XCom sink, reject rows, write counts."""

from __future__ import annotations

import pytest

from airflow_provider_patsnap.endpoints import AWARD, Reject
from airflow_provider_patsnap.exceptions import RowLimitExceededError
from airflow_provider_patsnap.sinks.base import (
    REJECT_NAMES,
    FetchedBatch,
    RejectKeys,
    WriteCounts,
    XComSink,
    reject_row,
)

FETCHED = FetchedBatch([], "2026-12-01T00:00:00+00:00")


def award_row(number: int) -> tuple[object, ...]:
    patent = {"pn": f"CN{number}A", "patent_id": f"p{number}", "patent_award_data": [{"award_name": "Gold"}]}
    [row] = AWARD.map_patent(patent, FETCHED.fetched_at).rows
    return row


def test_the_xcom_sink_returns_rows_as_dicts_by_column_name() -> None:
    with XComSink(AWARD.columns, row_limit=10) as sink:
        assert sink.write_batch([award_row(1)], [], FETCHED) == []
    [row] = sink.rows
    assert list(row) == list(AWARD.column_names) and row["pn"] == "CN1A" and row["award_name"] == "Gold"


def test_the_xcom_sink_refuses_more_rows_than_its_limit_naming_the_way_out() -> None:
    sink = XComSink(AWARD.columns, row_limit=2)
    sink.write_batch([award_row(1), award_row(2)], [], FETCHED)
    with pytest.raises(RowLimitExceededError, match=r"sql_conn_id .* output_path"):
        sink.write_batch([award_row(3)], [], FETCHED)


def test_a_reject_row_has_a_key_that_a_rerun_repeats_and_the_batch_time() -> None:
    reject = Reject("P032", "CN1A", "p1", "award_name: expected text", '{"award_name": {}}')
    row = reject_row(reject, FETCHED.fetched_at)
    assert len(row) == len(REJECT_NAMES)
    assert dict(zip(REJECT_NAMES, row, strict=True))["rejected_at"] == FETCHED.fetched_at
    assert reject_row(reject, "2027-01-01T00:00:00+00:00")[0] == row[0]  # same reject, same key


def test_identical_rejects_of_a_run_are_numbered_the_first_keeping_its_key() -> None:
    reject = Reject("P032", None, None, "P032 object without a usable pn", '{"award_name": "Gold"}')
    other = reject._replace(raw_value='{"award_name": "Gilt"}')
    keys = RejectKeys()
    first, seen = keys.rows([reject, other, reject], FETCHED.fetched_at)
    again, _ = keys.rows([reject, other, reject], FETCHED.fetched_at)  # a write repeated before keep()
    assert first == again
    keys.keep(seen)
    later, _ = keys.rows([reject], FETCHED.fetched_at)  # the same object in a later write of the run
    assert [row[0] for row in first] == [
        reject_row(reject, FETCHED.fetched_at)[0],  # as before numbering: rows of earlier runs stay
        reject_row(other, FETCHED.fetched_at)[0],
        reject_row(reject, FETCHED.fetched_at, 2)[0],
    ]
    assert later[0][0] == reject_row(reject, FETCHED.fetched_at, 3)[0]
    assert len({row[0] for row in [*first, *later]}) == 4
    rerun, _ = RejectKeys().rows([reject, other, reject], "2027-01-01T00:00:00+00:00")
    assert [row[0] for row in rerun] == [row[0] for row in first]


def test_write_counts_add_up() -> None:
    counts = WriteCounts(rows_removed=2)
    counts.add(WriteCounts(rows_removed=1, versions_opened=3))
    assert counts == WriteCounts(rows_removed=3, versions_opened=3)
