"""Parquet files against the sandbox over loopback, read back with pyarrow and with DuckDB.

The rows must be the vendor's (``expected_rows``), typed as docs/destinations.md says (a BIGINT date is
int64), one row group per write; a rerun replaces the file, a failed run leaves none behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from airflow_provider_patsnap.endpoints import ENDPOINTS, Endpoint
from airflow_provider_patsnap.exceptions import InvalidDestinationError, PatsnapAuthError
from airflow_provider_patsnap.operators import _run
from airflow_provider_patsnap.operators.patsnap import (
    PatsnapAwardOperator,
    PatsnapBatchOperator,
    PatsnapCustomsRecordOperator,
    PatsnapLegalInformationOperator,
    PatsnapSeicClassificationOperator,
)
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sinks.parquet import ParquetSink
from tests.helpers import CONN_ENV, REPO_ROOT, CannedVendor, expected_rows, numbers, sorted_rows

OPERATORS: list[type[PatsnapBatchOperator]] = [
    PatsnapSeicClassificationOperator,
    PatsnapAwardOperator,
    PatsnapCustomsRecordOperator,
    PatsnapLegalInformationOperator,
]
IDS = numbers(60, start=110650000) + numbers(20, prefix="JP", start=6500000) + numbers(20, prefix="US")
# docs/destinations.md, "Parquet": the Parquet type of each SQL type, and the type DuckDB reads it as.
ARROW_OF_SQL = {"TEXT": "string", "VARCHAR": "string", "BIGINT": "int64"}
DUCKDB_OF_SQL = {"TEXT": "VARCHAR", "VARCHAR": "VARCHAR", "BIGINT": "BIGINT"}


def kwargs_of(operator: type[PatsnapBatchOperator]) -> dict[str, Any]:
    return {"lang": "cn"} if operator is PatsnapSeicClassificationOperator else {}


def expected(endpoint: Endpoint, ids: list[str], lang: str = "en") -> list[dict[str, Any]]:
    return sorted(expected_rows(endpoint, ids, lang=lang), key=lambda row: row["record_key"])


def duckdb_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of the file as DuckDB reads it, as dicts."""
    with duckdb.connect() as db:
        cursor = db.execute("SELECT * FROM read_parquet(?)", [str(path)])
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def duckdb_types(path: Path) -> dict[str, str]:
    with duckdb.connect() as db:
        described = db.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    return {name: column_type for name, column_type, *_ in described}


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda op: op.endpoint.code)
def test_rows_read_back_by_pyarrow_and_duckdb_are_the_vendors(
    patsnap: Sandbox, operator: type[PatsnapBatchOperator], tmp_path: Path
) -> None:
    target = tmp_path / f"{operator.endpoint.name}.parquet"
    kwargs = kwargs_of(operator)
    summary = operator(task_id="t", patent_numbers=IDS, output_path=str(target), **kwargs).execute({})

    want = expected(operator.endpoint, IDS, lang=kwargs.get("lang", "en"))
    assert want and summary["rows"] == len(want)
    by_pyarrow = pq.read_table(target).to_pylist()
    by_duckdb = duckdb_rows(target)
    assert sorted_rows(by_pyarrow) == want
    assert sorted_rows(by_duckdb) == want
    assert [name for name in by_duckdb[0]] == list(operator.endpoint.column_names)  # column order kept
    assert summary["destination"] == str(target) and summary["write_mode"] is None
    # No temp file, no rejects: the file and its run record.
    assert sorted(path.name for path in tmp_path.iterdir()) == [target.name, f"{target.stem}.run.json"]


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda op: op.endpoint.code)
def test_types_follow_the_tables_sql_types_and_nulls_stay_null(
    patsnap: Sandbox, operator: type[PatsnapBatchOperator], tmp_path: Path
) -> None:
    target = tmp_path / "out.parquet"
    operator(task_id="t", patent_numbers=IDS, output_path=str(target), **kwargs_of(operator)).execute({})

    schema = pq.read_schema(target)
    base = {column.name: column.sql_type.split("(")[0] for column in operator.endpoint.columns}
    assert {field.name: str(field.type) for field in schema} == {
        name: ARROW_OF_SQL[sql] for name, sql in base.items()
    }
    assert all(field.nullable for field in schema)
    assert duckdb_types(target) == {name: DUCKDB_OF_SQL[sql] for name, sql in base.items()}
    # Each field keeps its SQL type and description (what the warehouse recipes' DDL is written from).
    record_key = schema.field("record_key").metadata
    assert record_key[b"sql_type"] == b"VARCHAR(40)" and record_key[b"description"].startswith(b"sha1")
    rows = pq.read_table(target).to_pylist()
    nulls = [name for name in base if any(row[name] is None for row in rows)]
    if (
        operator is PatsnapLegalInformationOperator
    ):  # inpadoc rows have no event_vol, official ones no country
        assert {"event_vol", "ref_country_code"} <= set(nulls)
    with duckdb.connect() as db:
        for name in nulls:
            [(count,)] = db.execute(
                f"SELECT count(*) FROM read_parquet(?) WHERE {name} IS NULL", [str(target)]
            ).fetchall()
            assert count == sum(row[name] is None for row in rows)


def test_a_bigint_date_is_int64_and_sums_in_duckdb(patsnap: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "legal.parquet"
    PatsnapLegalInformationOperator(task_id="t", patent_numbers=IDS, output_path=str(target)).execute({})
    assert str(pq.read_schema(target).field("event_date").type) == "int64"
    dates = [row["event_date"] for row in expected_rows(ENDPOINTS["P026"], IDS) if row["event_date"]]
    with duckdb.connect() as db:
        [(total, earliest, typename)] = db.execute(
            "SELECT sum(event_date), min(event_date), typeof(min(event_date)) FROM read_parquet(?)",
            [str(target)],
        ).fetchall()
    assert (total, earliest, typename) == (sum(dates), min(dates), "BIGINT")


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda op: op.endpoint.code)
def test_cjk_text_arrives_intact(
    patsnap: Sandbox, operator: type[PatsnapBatchOperator], tmp_path: Path
) -> None:
    target = tmp_path / "cjk.parquet"
    operator(task_id="t", patent_numbers=IDS, output_path=str(target), **kwargs_of(operator)).execute({})
    text = "".join(str(value) for row in duckdb_rows(target) for value in row.values())
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text)
    wanted = "".join(
        str(value)
        for row in expected_rows(operator.endpoint, IDS, lang=kwargs_of(operator).get("lang", "en"))
        for value in row.values()
    )
    assert sorted(ch for ch in text if ch >= "\u3000") == sorted(ch for ch in wanted if ch >= "\u3000")


def test_a_rerun_replaces_the_file(patsnap: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "awards.parquet"
    first_ids, second_ids = IDS[:50], IDS[50:]
    PatsnapAwardOperator(task_id="t", patent_numbers=first_ids, output_path=f"file://{target}").execute({})
    assert sorted_rows(duckdb_rows(target)) == expected(ENDPOINTS["P032"], first_ids)
    PatsnapAwardOperator(task_id="t", patent_numbers=second_ids, output_path=f"file://{target}").execute({})
    assert sorted_rows(duckdb_rows(target)) == expected(ENDPOINTS["P032"], second_ids)
    assert sorted(path.name for path in target.parent.iterdir()) == ["awards.parquet", "awards.run.json"]


def test_a_failed_run_leaves_no_half_file_and_an_earlier_file_alone(
    patsnap: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "awards.parquet"
    wrong_key = json.dumps(
        {"conn_type": "patsnap", "host": patsnap.base_url, "password": "sk-wrong", "extra": {"qps": 0}}
    )
    with monkeypatch.context() as patch:
        patch.setenv(CONN_ENV, wrong_key)
        with pytest.raises(PatsnapAuthError):
            PatsnapAwardOperator(task_id="t", patent_numbers=IDS, output_path=str(target)).execute({})
    assert [path.name for path in tmp_path.iterdir()] == ["awards.run.json"]  # only the failed try's record

    PatsnapAwardOperator(task_id="t", patent_numbers=IDS, output_path=str(target)).execute({})
    before = target.read_bytes()
    # Fails after its first row group went into the temporary file: nothing of it is at the path, and
    # that row group (paid for) is kept beside it as a whole Parquet file.
    write_rows = ParquetSink.write_rows
    calls: list[int] = []

    def fail_on_the_second_write(self: ParquetSink, rows: list[Any]) -> Any:
        calls.append(len(rows))
        if len(calls) == 2:
            raise OSError("disk full")
        return write_rows(self, rows)

    monkeypatch.setattr(_run, "WRITE_GROUP", 1)
    monkeypatch.setattr(ParquetSink, "write_rows", fail_on_the_second_write)
    with pytest.raises(OSError, match="disk full"):
        PatsnapAwardOperator(task_id="t", patent_numbers=numbers(250), output_path=str(target)).execute({})
    assert len(calls) == 2 and calls[0] > 0
    assert target.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "awards.parquet",
        "awards.partial.parquet",
        "awards.run.json",
    ]
    partial = tmp_path / "awards.partial.parquet"
    assert len(duckdb_rows(partial)) == pq.ParquetFile(partial).metadata.num_rows == calls[0]

    monkeypatch.setattr(ParquetSink, "write_rows", write_rows)  # the next successful run removes the leftover
    PatsnapAwardOperator(task_id="t", patent_numbers=IDS, output_path=str(target)).execute({})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["awards.parquet", "awards.run.json"]


def test_one_row_group_per_write(patsnap: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each write is written out as a row group as it arrives: the sink never holds the run."""
    target = tmp_path / "legal.parquet"
    writes: list[int] = []
    write_rows = ParquetSink.write_rows

    def counting(self: ParquetSink, rows: list[Any]) -> Any:
        if rows:
            writes.append(len(rows))
            # What was written before this write is in the temporary file already: its row groups.
            assert self.row_groups == len(writes) - 1
        return write_rows(self, rows)

    monkeypatch.setattr(_run, "WRITE_GROUP", 1)  # one batch of <= 100 patents per write
    monkeypatch.setattr(ParquetSink, "write_rows", counting)
    ids = numbers(450, prefix="CN", start=110650000)
    summary = PatsnapLegalInformationOperator(
        task_id="t", patent_numbers=ids, output_path=str(target)
    ).execute({})

    metadata = pq.ParquetFile(target).metadata
    assert summary["calls"] == 5 and len(writes) == 5
    assert metadata.num_row_groups == len(writes)
    assert [metadata.row_group(index).num_rows for index in range(metadata.num_row_groups)] == writes
    assert sum(writes) == summary["rows"] == len(expected_rows(ENDPOINTS["P026"], ids))


def test_mapped_shards_and_folders_get_their_own_files(patsnap: Sandbox, tmp_path: Path) -> None:
    run_id = "scheduled__2024-01-02T00:00:00+00:00"
    shards = [IDS[:40], IDS[40:]]
    for index, ids in enumerate(shards):
        context: Any = {"run_id": run_id, "ti": SimpleNamespace(map_index=index)}
        PatsnapAwardOperator(
            task_id="awards", patent_numbers=ids, output_path=f"{tmp_path}/one/awards.parquet"
        ).execute(context)
        PatsnapAwardOperator(
            task_id="awards", patent_numbers=ids, output_path=f"{tmp_path}/folder/", file_format="parquet"
        ).execute(context)
    PatsnapAwardOperator(
        task_id="awards", patent_numbers=IDS, output_path=f"{tmp_path}/folder/", file_format="parquet"
    ).execute({"run_id": run_id})

    assert sorted(path.name for path in (tmp_path / "one").iterdir()) == [
        "awards_0.parquet",
        "awards_0.run.json",
        "awards_1.parquet",
        "awards_1.run.json",
    ]
    folder = tmp_path / "folder" / "awards"
    stem = "scheduled__2024-01-02T00_00_00_00_00"
    assert sorted(path.name for path in folder.iterdir()) == [
        f"{stem}.parquet",
        f"{stem}.run.json",
        f"{stem}_0.parquet",
        f"{stem}_0.run.json",
        f"{stem}_1.parquet",
        f"{stem}_1.run.json",
    ]
    for index, ids in enumerate(shards):
        want = expected(ENDPOINTS["P032"], ids)
        assert sorted_rows(duckdb_rows(tmp_path / "one" / f"awards_{index}.parquet")) == want
        assert sorted_rows(duckdb_rows(folder / f"{stem}_{index}.parquet")) == want
    with duckdb.connect() as db:  # the shards together are the whole list
        [(count,)] = db.execute(
            "SELECT count(*) FROM read_parquet(?)", [f"{tmp_path}/one/*.parquet"]
        ).fetchall()
    assert count == len(expected_rows(ENDPOINTS["P032"], IDS))


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        (
            {"output_path": "/data/a.parquet", "file_format": "jsonl"},
            "names a .parquet file but file_format='jsonl'",
        ),
        (
            {"output_path": "/data/a.jsonl", "file_format": "parquet"},
            "names a .jsonl file but file_format='parquet'",
        ),
        ({"output_path": "/data/", "file_format": "csv"}, "file_format must be one of"),
        ({"file_format": "parquet"}, "file_format='parquet' needs output_path"),
    ],
)
def test_a_format_that_cannot_be_is_refused_when_the_dag_is_parsed(
    kwargs: dict[str, Any], names: str
) -> None:
    with pytest.raises(ValueError, match=names.replace("(", r"\(")):
        PatsnapAwardOperator(task_id="t", patent_numbers=IDS, **kwargs)


def test_a_rendered_path_is_checked_before_any_call(patsnap: Sandbox, tmp_path: Path) -> None:
    op = PatsnapAwardOperator(
        task_id="t", patent_numbers=IDS, output_path="{{ params.path }}", file_format="parquet"
    )
    op.output_path = f"{tmp_path}/awards.jsonl"
    with pytest.raises(InvalidDestinationError, match=r"names a \.jsonl file"):
        op.execute({})
    op.output_path = f"{tmp_path}/awards"  # neither a folder nor a .parquet name
    with pytest.raises(
        InvalidDestinationError, match=r"neither a folder nor a file name ending in \.parquet"
    ):
        op.execute({})
    assert patsnap.requests == [] and list(tmp_path.iterdir()) == []


def test_without_pyarrow_the_task_fails_before_any_call_naming_the_extra(
    patsnap: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, module, None)  # import pyarrow now raises ImportError
    op = PatsnapAwardOperator(task_id="t", patent_numbers=IDS, output_path=f"{tmp_path}/a.parquet", retries=3)
    with pytest.raises(InvalidDestinationError, match=r"airflow-provider-patsnap\[parquet\]") as raised:
        op.execute({})
    assert "pyarrow" in str(raised.value)
    assert patsnap.requests == [] and list(tmp_path.iterdir()) == []


def test_a_dag_file_building_a_parquet_task_does_not_import_pyarrow(tmp_path: Path) -> None:
    """DAG files import the operators on every parse: pyarrow loads when a Parquet sink opens, not then."""
    probe = (
        "import sys\n"
        "from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator\n"
        f"PatsnapAwardOperator(task_id='a', patent_numbers=['CN1A'], output_path='{tmp_path}/a.parquet', "
        "emit_asset=True)\n"
        f"PatsnapAwardOperator(task_id='b', patent_numbers=['CN1A'], output_path='{tmp_path}/', "
        "file_format='parquet')\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('pyarrow', 'duckdb')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], CannedVendor]]:
    started: list[CannedVendor] = []

    def start(data_json: str) -> CannedVendor:
        canned = CannedVendor(data_json)
        started.append(canned)
        monkeypatch.setenv(CONN_ENV, canned.connection_json())
        return canned

    yield start
    for canned in started:
        canned.close()


def test_odd_values_are_cleaned_and_rejects_go_beside_the_file_as_ndjson(
    vendor: Callable[[str], CannedVendor], tmp_path: Path
) -> None:
    patent = {
        "pn": "CN1A",
        "patent_id": "id-1",
        "patent_customs_record_data": [
            {"record_number": "R1", "start_date": "2021/12/07", "product": "电荷\u0000控制剂"},
            {"record_number": "R2", "start_date": 20150902, "contact": "lone \ud800 half"},
            {"record_number": "R3", "start_date": "20211207000000000000"},
        ],
    }
    vendor(json.dumps([patent]))
    target = tmp_path / "customs.parquet"
    (tmp_path / ".customs.parquet.0123456789abcdef.tmp").write_bytes(b"PAR1 half a file")  # a killed run's
    summary = PatsnapCustomsRecordOperator(task_id="t", patent_ids=["id-1"], output_path=str(target)).execute(
        {}
    )

    rows = [
        (row["record_number"], row["start_date"], row["product"], row["contact"])
        for row in duckdb_rows(target)
    ]
    assert sorted(rows) == [("R1", 20211207, "电荷控制剂", None), ("R2", 20150902, None, "lone \ufffd half")]
    rejects_path = tmp_path / "customs.rejects.jsonl"
    [reject] = [json.loads(line) for line in rejects_path.read_text(encoding="utf-8").splitlines()]
    assert "start_date" in reject["reason"] and json.loads(reject["raw_value"])["record_number"] == "R3"
    assert (summary["rows"], summary["rejects"]) == (2, 1)
    assert summary["rejects_destination"] == str(rejects_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "customs.parquet",
        "customs.rejects.jsonl",
        "customs.run.json",
    ]


@pytest.fixture
def object_store() -> Iterator[Any]:
    """A non-local filesystem through Airflow's object storage: fsspec's in-memory one, attached as the
    connection ``mem`` (``memory://mem@bucket/...``). Its rename is a copy and a delete, as on S3."""
    from fsspec.implementations.memory import MemoryFileSystem

    try:
        from airflow.sdk.io import attach
    except ImportError:  # Airflow 2.11
        from airflow.io.store import attach  # type: ignore[no-redef]

    fs = MemoryFileSystem()
    attach("memory", conn_id="mem", fs=fs)
    yield fs
    fs.rm("/patsnap-test", recursive=True)


def test_a_non_local_object_store_gets_the_same_file(patsnap: Sandbox, object_store: Any) -> None:
    target = "memory://mem@patsnap-test/legal/{}.parquet"
    summary = PatsnapLegalInformationOperator(
        task_id="t", patent_numbers=IDS, output_path=target.format("2024-01-02")
    ).execute({})
    with object_store.open("/patsnap-test/legal/2024-01-02.parquet", "rb") as file:
        rows = pq.read_table(file).to_pylist()
    assert sorted_rows(rows) == expected(ENDPOINTS["P026"], IDS) and summary["rows"] == len(rows)
    written = ["/patsnap-test/legal/2024-01-02.parquet", "/patsnap-test/legal/2024-01-02.run.json"]
    assert sorted(object_store.ls("/patsnap-test/legal", detail=False)) == written

    wrong_key = json.dumps(
        {"conn_type": "patsnap", "host": patsnap.base_url, "password": "sk-wrong", "extra": {"qps": 0}}
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONN_ENV, wrong_key)
        with pytest.raises(PatsnapAuthError):
            PatsnapLegalInformationOperator(
                task_id="t", patent_numbers=IDS, output_path=target.format("2024-01-03")
            ).execute({})
    # No file for the failed run; its try's record says it failed.
    failed = "/patsnap-test/legal/2024-01-03.run.json"
    assert sorted(object_store.ls("/patsnap-test/legal", detail=False)) == sorted([*written, failed])
