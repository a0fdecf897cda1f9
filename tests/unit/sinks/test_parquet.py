"""The Parquet sink: the type of each SQL type, nulls kept, one row group per write, staged publishing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_patsnap._compat import ObjectStoragePath
from airflow_provider_patsnap.endpoints import ENDPOINTS, Column
from airflow_provider_patsnap.sinks.base import REJECT_COLUMNS, FetchedBatch
from airflow_provider_patsnap.sinks.parquet import ARROW_TYPES, ParquetSink, arrow_schema, arrow_type_name
from airflow_provider_patsnap.sinks.sql_modes import HISTORY_COLUMNS
from airflow_provider_patsnap.sinks.state import STATE_COLUMNS

COLUMNS = (
    Column("record_key", "VARCHAR(40)", "key"),
    Column("pn", "TEXT", "patent number"),
    Column("patent_id", "TEXT", "id"),
    Column("event_date", "BIGINT", "YYYYMMDD"),
    Column("row_count", "INTEGER", "rows"),
    Column("is_current", "SMALLINT", "1 or 0"),
)
FETCHED = FetchedBatch([], "2026-01-10T09:00:00+00:00")


@pytest.mark.parametrize(
    ("sql_type", "arrow"),
    [
        ("TEXT", "string"),
        ("VARCHAR(40)", "string"),
        ("varchar(8)", "string"),
        ("BIGINT", "int64"),
        ("INTEGER", "int32"),
        ("SMALLINT", "int16"),
    ],
)
def test_each_sql_type_has_its_arrow_type(sql_type: str, arrow: str) -> None:
    assert arrow_type_name(sql_type) == arrow


@pytest.mark.parametrize("sql_type", ["REAL", "VARCHAR2(4)", "TEXT[]", "VARCHAR(n)", ""])
def test_an_unknown_sql_type_is_refused_naming_it(sql_type: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"no Parquet type for SQL type {sql_type!r}")):
        arrow_type_name(sql_type)


def test_every_column_the_package_defines_has_a_type() -> None:
    """Data tables, history and state columns, rejects: a new SQL type must get a Parquet type first."""
    columns = [
        *(column for endpoint in ENDPOINTS.values() for column in endpoint.columns),
        *HISTORY_COLUMNS,
        *STATE_COLUMNS,
        *REJECT_COLUMNS,
    ]
    assert {arrow_type_name(column.sql_type) for column in columns} <= set(ARROW_TYPES.values())


def test_the_schema_is_the_columns_in_order_nullable_with_their_sql_type() -> None:
    schema = arrow_schema(COLUMNS)
    assert schema.names == [column.name for column in COLUMNS]
    assert [field.type for field in schema] == [
        pa.string(),
        pa.string(),
        pa.string(),
        pa.int64(),
        pa.int32(),
        pa.int16(),
    ]
    assert all(field.nullable for field in schema)
    assert schema.field("event_date").metadata == {b"sql_type": b"BIGINT", b"description": b"YYYYMMDD"}
    legal = arrow_schema(ENDPOINTS["P026"].columns)
    assert legal.field("event_date").type == pa.int64() and legal.field("event_desc").type == pa.string()


def sink_at(path: Path) -> ParquetSink:
    return ParquetSink(ObjectStoragePath(f"file://{path}"), COLUMNS, endpoint="P026")


ROWS = [
    ("a" * 40, "CN1A", "p1", 20211207, 3, 1),
    ("b" * 40, "JP2B", None, None, None, None),
    ("c" * 40, "专利权的终止", "p3", 19991231, 0, 0),
]


def test_each_write_is_one_row_group_and_nulls_stay_null(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    with sink_at(target) as sink:
        assert sink.write_batch(ROWS[:2], [], FETCHED) == []
        assert sink.write_batch([], [], FETCHED) == []  # nothing fetched: no empty row group
        assert sink.write_batch(ROWS[2:], [], FETCHED) == []
        assert not target.exists()  # staged until the run succeeds
    metadata = pq.ParquetFile(target).metadata
    assert metadata.num_row_groups == 2 and sink.row_groups == 2
    assert [metadata.row_group(index).num_rows for index in range(2)] == [2, 1]
    table = pq.read_table(target)
    assert [tuple(row.values()) for row in table.to_pylist()] == ROWS
    assert table.column("event_date").null_count == 1
    assert metadata.row_group(0).column(0).compression == "SNAPPY"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.parquet"]


def test_a_run_without_rows_still_publishes_a_file_with_the_schema(tmp_path: Path) -> None:
    target = tmp_path / "empty.parquet"
    with sink_at(target):
        pass
    table = pq.read_table(target)
    assert table.num_rows == 0 and table.schema.names == [column.name for column in COLUMNS]


def test_a_failed_run_leaves_the_earlier_file_and_keeps_what_it_wrote_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    with sink_at(target) as sink:
        sink.write_batch(ROWS, [], FETCHED)
    before = target.read_bytes()
    with pytest.raises(RuntimeError), sink_at(target):
        raise RuntimeError("the task failed before any row")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.parquet"]
    with pytest.raises(RuntimeError), sink_at(target) as sink:
        sink.write_batch(ROWS[:1], [], FETCHED)
        raise RuntimeError("the task failed")
    assert target.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.parquet", "out.partial.parquet"]
    assert [tuple(row.values()) for row in pq.read_table(tmp_path / "out.partial.parquet").to_pylist()] == [
        ROWS[0]
    ]
    with sink_at(target) as sink:  # a run that succeeds removes the leftover
        sink.write_batch(ROWS, [], FETCHED)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.parquet"]


def test_a_row_arrow_cannot_store_is_a_reject_and_the_rest_lands(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    too_big = ("d" * 40, "CN4A", "p4", 2**70, 1, 1)  # no int64 holds it
    with sink_at(target) as sink:
        [reject] = sink.write_batch([ROWS[0], too_big, ROWS[1]], [], FETCHED)
    assert (reject.endpoint, reject.pn, reject.patent_id) == ("P026", "CN4A", "p4")
    assert reject.reason.startswith("Parquet cannot store this row in the column types")
    assert json.loads(reject.raw_value)["event_date"] == 2**70
    assert [row["pn"] for row in pq.read_table(target).to_pylist()] == ["CN1A", "JP2B"]
    [line] = (tmp_path / "out.rejects.jsonl").read_text(encoding="utf-8").splitlines()
    written = json.loads(line)
    assert (written["pn"], written["rejected_at"]) == ("CN4A", FETCHED.fetched_at)


def test_a_record_key_appears_once_in_the_file_the_last_row_winning(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    again = (ROWS[0][0], "CN1A", "p1", 20220101, 4, 0)
    with sink_at(target) as sink:
        sink.write_batch([ROWS[0], ROWS[1], again], [], FETCHED)
    assert [tuple(row.values()) for row in pq.read_table(target).to_pylist()] == [again, ROWS[1]]
