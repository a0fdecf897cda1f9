"""The rows of ``<table>_state``: one per requested patent, in column order, sorted by key."""

from __future__ import annotations

from airflow_provider_patsnap.sinks.base import FetchedBatch, FetchedPatent
from airflow_provider_patsnap.sinks.state import STATE_COLUMNS, FetchState


def test_state_rows_hold_each_requested_patent_once_in_column_order() -> None:
    state = FetchState("P022", "patent_number", {"lang": "en"})
    batch = FetchedBatch(
        [
            FetchedPatent("CN1A", "CN1A", "CN1A", 3, False),
            FetchedPatent("CN2A", "CN2A", None, 0, False),
            FetchedPatent("cn1a", "CN1A", "CN1A", 3, False),  # PatSnap's same patent: one key, the last kept
        ],
        "2026-12-01T00:00:00+00:00",
    )
    names = [column.name for column in STATE_COLUMNS]
    rows = [dict(zip(names, row, strict=True)) for row in state.rows(batch)]
    assert [row["state_key"] for row in rows] == sorted(state.key(p) for p in ("CN1A", "CN2A"))
    by_patent = {row["patent"]: row for row in rows}
    assert by_patent["CN1A"] == {  # requested as cn1a: kept as the rows spell it, PatSnap's echo
        "state_key": state.key("CN1A"),
        "endpoint": "P022",
        "id_kind": "patent_number",
        "patent": "CN1A",
        "params": '{"lang": "en"}',
        "found": 1,
        "row_count": 3,
        "fetched_at": "2026-12-01T00:00:00+00:00",
    }
    assert (by_patent["CN2A"]["found"], by_patent["CN2A"]["row_count"]) == (0, 0)


def test_a_patent_without_data_keeps_the_spelling_its_rows_were_written_in() -> None:
    state = FetchState("P032", "patent_number", {})
    batch = FetchedBatch(
        [FetchedPatent("cn1a", "CN1A", None, 0, False), FetchedPatent("cn2a", "CN2A", None, 0, False)],
        "2026-12-01T00:00:00+00:00",
    )
    patent = [column.name for column in STATE_COLUMNS].index("patent")

    rows = state.rows(batch, {"CN1A": "CN1A"})  # by match key: as the state table spells it

    assert sorted(row[patent] for row in rows) == ["CN1A", "cn2a"]  # cn2a: never had data, as requested
