"""Odd vendor payloads from a loopback server: nothing is silently lost, one bad value never sinks a load.

Each test serves exact JSON bytes and lands them in a file or in every engine: SQLite, PostgreSQL, MariaDB
(through both MySQL clients) and DuckDB.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_patsnap.exceptions import PatsnapRejectsError
from airflow_provider_patsnap.operators.patsnap import (
    PatsnapAwardOperator,
    PatsnapBatchOperator,
    PatsnapCustomsRecordOperator,
    PatsnapLegalInformationOperator,
)
from airflow_provider_patsnap.sinks.sql_tables import TableMismatchError
from tests.helpers import CONN_ENV, CannedVendor
from tests.sql_engines import ENGINES, engine_connection, execute
from tests.sql_engines import records as engine_records

LONG_PN = "CN" + "1" * 70 + "A"  # 73 characters: wider than the VARCHAR(64) of the first release


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


@pytest.fixture(params=ENGINES)
def warehouse(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each SQL test runs on a fresh database of each engine."""
    monkeypatch.setenv("AIRFLOW_CONN_HOSTILE", engine_connection(request.param, request, "hostile"))
    return "hostile"


def records(conn_id: str, sql: str) -> list[tuple[Any, ...]]:
    return engine_records(conn_id, sql)


def run(operator: type[PatsnapBatchOperator], conn_id: str, table: str, **kwargs: Any) -> dict[str, Any]:
    summary: dict[str, Any] = operator(task_id="t", sql_conn_id=conn_id, table=table, **kwargs).execute(
        context={}
    )
    return summary


@pytest.mark.parametrize(
    "operator, payload_key, payload, good",
    [
        (
            PatsnapAwardOperator,
            "patent_award_data",
            {"award_name": "Gold", "award_session": 2018},
            [{"award_name": "Silver"}],
        ),
        (
            PatsnapLegalInformationOperator,
            "patsnap_legal_data",
            [{"event_code": "B350"}],
            {"inpadoc_legal_data": [{"event_code": "B350", "event_date": 20200101}]},
        ),
    ],
    ids=["P032-object", "P026-list"],
)
def test_a_payload_of_the_wrong_shape_is_quarantined_and_fails_the_task(
    vendor: Callable[[str], CannedVendor],
    warehouse: str,
    operator: type[PatsnapBatchOperator],
    payload_key: str,
    payload: Any,
    good: Any,
) -> None:
    """An unknown shape is an error naming the endpoint and the patent, whatever max_rejects allows;
    the raw value is kept and every other row still lands."""
    code = operator.endpoint.code
    vendor(
        json.dumps(
            [
                {"pn": "CN1A", "patent_id": "p1", payload_key: payload},
                {"pn": "CN2A", "patent_id": "p2", payload_key: good},
            ]
        )
    )
    for _ in range(2):  # a rerun fails the same way, and replaces its reject instead of repeating it
        with pytest.raises(
            PatsnapRejectsError, match=rf"PatSnap {code} sent {payload_key} in a shape .* first: \['CN1A'\]"
        ):
            run(operator, warehouse, "shapes", patent_numbers=["CN1A", "CN2A"], max_rejects=100)
        [(endpoint, pn, reason, raw)] = records(
            warehouse, "SELECT endpoint, pn, reason, raw_value FROM shapes_rejects"
        )
        assert (endpoint, pn) == (code, "CN1A")
        assert reason.startswith(f"{code} {payload_key} of 'CN1A'")
        assert json.loads(raw) == payload
        assert records(warehouse, "SELECT DISTINCT pn FROM shapes") == [("CN2A",)]


def test_value_rejects_follow_max_rejects(vendor: Callable[[str], CannedVendor], warehouse: str) -> None:
    vendor(json.dumps([customs_patent("CN1A")]))  # one record with a 20-digit date
    summary = run(PatsnapCustomsRecordOperator, warehouse, "customs", patent_numbers=["CN1A"])
    assert (summary["rows"], summary["rejects"]) == (2, 1)  # within the default max_rejects=10
    with pytest.raises(PatsnapRejectsError, match=r"1 P031 record.s. rejected, more than max_rejects=0"):
        run(PatsnapCustomsRecordOperator, warehouse, "customs", patent_numbers=["CN1A"], max_rejects=0)


def test_objects_without_an_id_are_rejects_never_one_merged_row(
    vendor: Callable[[str], CannedVendor], warehouse: str
) -> None:
    nameless = [{"patent_award_data": [{"award_name": name}]} for name in ("Gold", "Gilt", "Silver")]
    known = {"pn": "CN1A", "patent_id": "p1", "patent_award_data": [{"award_name": "Bronze"}]}
    vendor(json.dumps([*nameless, known]))
    summary = run(PatsnapAwardOperator, warehouse, "awards", patent_numbers=["CN1A", "CN2A"])
    assert (summary["rows"], summary["rejects"], summary["missing"], summary["found"]) == (1, 3, 1, 1)
    assert records(warehouse, "SELECT pn, award_name FROM awards") == [("CN1A", "Bronze")]
    reasons = records(warehouse, "SELECT reason, raw_value FROM awards_rejects ORDER BY raw_value")
    assert [json.loads(raw) for _, raw in reasons] == sorted(nameless, key=json.dumps)
    assert all("without a usable pn" in reason for reason, _ in reasons)


def test_duplicates_are_written_once_and_unrequested_patents_not_at_all(
    vendor: Callable[[str], CannedVendor], tmp_path: Path
) -> None:
    award = {"pn": "CN1A", "patent_id": "p1", "patent_award_data": [{"award_name": "Gold"}]}
    stranger = {"pn": "US9B2", "patent_id": "p9", "patent_award_data": [{"award_name": "Silver"}]}
    vendor(json.dumps([award, award, stranger]))
    output = tmp_path / "awards.jsonl"
    summary = PatsnapAwardOperator(
        task_id="t", patent_numbers=["CN1A"], output_path=f"file://{output}"
    ).execute(context={})
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [(row["pn"], row["award_name"]) for row in lines] == [("CN1A", "Gold")]
    assert (summary["duplicates"], summary["unrequested"], summary["billed_units"]) == (1, 1, 3)
    assert not (tmp_path / "awards.rejects.jsonl").exists()


def customs_patent(pn: str) -> dict[str, Any]:
    return {
        "pn": pn,
        "patent_id": f"id-{len(pn)}",
        "patent_customs_record_data": [
            {"record_number": "R1", "start_date": "2021/12/07", "product": "电荷\u0000控制剂"},
            {"record_number": "R2", "start_date": 20150902, "contact": "lone \ud800 half"},
            {"record_number": "R3", "start_date": "20211207000000000000"},
        ],
    }


CUSTOMS_SQL = "SELECT pn, record_number, start_date, product, contact FROM customs ORDER BY record_number"


def test_odd_values_are_cleaned_or_rejected_and_the_load_goes_on(
    vendor: Callable[[str], CannedVendor], warehouse: str
) -> None:
    vendor(json.dumps([customs_patent(LONG_PN)]))  # ASCII JSON: the lone surrogate goes as \ud800
    summary = run(PatsnapCustomsRecordOperator, warehouse, "customs", patent_ids=["id-73"])
    assert (summary["rows"], summary["rejects"]) == (2, 1)
    assert records(warehouse, CUSTOMS_SQL) == [
        (LONG_PN, "R1", 20211207, "电荷控制剂", None),
        (LONG_PN, "R2", 20150902, None, "lone \ufffd half"),
    ]
    [(reason, raw)] = records(warehouse, "SELECT reason, raw_value FROM customs_rejects")
    assert "start_date: expected a YYYYMMDD date, got '20211207000000000000'" in reason
    assert json.loads(raw)["start_date"] == "20211207000000000000"


def test_odd_values_in_a_file_are_cleaned_and_rejects_go_beside_it(
    vendor: Callable[[str], CannedVendor], tmp_path: Path
) -> None:
    vendor(json.dumps([customs_patent(LONG_PN)]))
    output = tmp_path / "customs.jsonl"
    summary = PatsnapCustomsRecordOperator(
        task_id="t", patent_ids=["id-73"], output_path=f"file://{output}"
    ).execute(context={})
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row["contact"] for row in lines] == [None, "lone \ufffd half"]
    [reject] = [json.loads(line) for line in (tmp_path / "customs.rejects.jsonl").read_text().splitlines()]
    assert summary["rejects"] == 1 and "start_date" in reject["reason"]
    assert summary["rejects_destination"].endswith("customs.rejects.jsonl")


@pytest.mark.parametrize("engine", ["postgres", "mariadb", "mariadb-connector"])
def test_a_value_an_older_table_cannot_hold_rejects_that_row_only(
    vendor: Callable[[str], CannedVendor],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
) -> None:
    """A table made by release 0.1 (pn VARCHAR(64)): the database refuses the long pn (PostgreSQL
    "value too long", MariaDB's strict mode error 1406) in those rows only."""
    monkeypatch.setenv("AIRFLOW_CONN_OLDER", engine_connection(engine, request, "older"))
    columns = ", ".join(
        f"{c.name} {'VARCHAR(64)' if c.name in ('pn', 'patent_id') else c.sql_type}"
        for c in PatsnapCustomsRecordOperator.endpoint.columns
    )
    execute("older", f"CREATE TABLE old_customs ({columns}, PRIMARY KEY (record_key))")  # as 0.1 made it
    vendor(json.dumps([customs_patent(LONG_PN), customs_patent("CN2A")]))
    summary = run(PatsnapCustomsRecordOperator, "older", "old_customs", patent_ids=["id-73", "id-4"])
    assert (summary["rows"], summary["rejects"]) == (2, 4)  # the long pn's 2 rows + the 2 bad dates
    assert records("older", "SELECT pn FROM old_customs") == [("CN2A",), ("CN2A",)]
    refused = records("older", "SELECT reason FROM old_customs_rejects WHERE reason LIKE '%refused%'")
    too_long = "value too long" if engine == "postgres" else "Data too long for column 'pn'"
    assert len(refused) == 2 and all(too_long in reason for (reason,) in refused), refused


@pytest.mark.parametrize(
    "create, words",
    [
        ("CREATE TABLE {table} ({columns})", "no primary key or unique index on record_key"),
        (
            "CREATE TABLE {table} (record_key VARCHAR(40) PRIMARY KEY, pn TEXT)",
            r"ALTER TABLE \w+\.awards ADD COLUMN",
        ),
    ],
    ids=["no-unique-key", "missing-columns"],
)
def test_an_existing_table_that_cannot_take_the_rows_fails_before_any_paid_call(
    vendor: Callable[[str], CannedVendor], warehouse: str, create: str, words: str
) -> None:
    columns = ", ".join(f"{c.name} {c.sql_type}" for c in PatsnapAwardOperator.endpoint.columns)
    execute(warehouse, create.format(table="awards", columns=columns))
    canned = vendor(
        json.dumps([{"pn": "CN1A", "patent_id": "p1", "patent_award_data": [{"award_name": "A"}]}])
    )
    with pytest.raises(
        TableMismatchError, match=rf"table \w+\.awards exists but cannot take these rows: .*{words}"
    ):
        run(PatsnapAwardOperator, warehouse, "awards", patent_numbers=["CN1A"])
    assert canned.calls == 0


def identical_rejects_payload() -> str:
    """Two identical objects without a pn, and a patent with two identical records of a bad date: four
    rejects, two by two alike."""
    nameless = {"patent_customs_record_data": [{"record_number": "R0"}]}
    bad = {"record_number": "R3", "start_date": "20211207000000000000"}
    patent = {
        "pn": "CN1A",
        "patent_id": "p1",
        "patent_customs_record_data": [bad, bad, {"record_number": "R1"}],
    }
    return json.dumps([nameless, nameless, patent])


def documented_reject_key(row: dict[str, Any], occurrence: int) -> str:
    """docs/destinations.md: sha1 of the other columns but rejected_at, joined by \\x1f (None as "None");
    the second and later identical rejects of a run add their number."""
    texts = [str(row[name]) for name in ("endpoint", "pn", "patent_id", "reason", "raw_value")]
    text = "\x1f".join(texts) + (f"\x1f{occurrence}" if occurrence > 1 else "")
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def expected_keys(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, int] = {}
    keys = []
    for row in rows:
        plain = documented_reject_key(row, 1)
        seen[plain] = seen.get(plain, 0) + 1
        keys.append(documented_reject_key(row, seen[plain]))
    return sorted(keys)


def test_identical_rejects_are_each_kept_and_a_rerun_repeats_their_keys(
    vendor: Callable[[str], CannedVendor], warehouse: str
) -> None:
    """One reject per object or record, never merged: the table, the summary and the docs agree."""
    vendor(identical_rejects_payload())
    columns = "reject_key, endpoint, pn, patent_id, reason, raw_value"
    for _ in range(2):  # a rerun replaces the same four rows
        summary = run(PatsnapCustomsRecordOperator, warehouse, "customs", patent_numbers=["CN1A"])
        rows = [
            dict(zip(columns.split(", "), row, strict=True))
            for row in records(warehouse, f"SELECT {columns} FROM customs_rejects")
        ]
        assert summary["rejects"] == len(rows) == 4
        assert sorted(row["reject_key"] for row in rows) == expected_keys(rows)
        assert records(warehouse, "SELECT record_number FROM customs") == [("R1",)]


def test_identical_rejects_each_get_their_own_key_in_the_rejects_file(
    vendor: Callable[[str], CannedVendor], tmp_path: Path
) -> None:
    vendor(identical_rejects_payload())
    output = tmp_path / "customs.jsonl"
    keys = []
    for _ in range(2):
        summary = PatsnapCustomsRecordOperator(
            task_id="t", patent_numbers=["CN1A"], output_path=str(output)
        ).execute(context={})
        rejects = [json.loads(line) for line in (tmp_path / "customs.rejects.jsonl").read_text().splitlines()]
        assert summary["rejects"] == len(rejects) == len({row["reject_key"] for row in rejects}) == 4
        assert sorted(row["reject_key"] for row in rejects) == expected_keys(rejects)
        keys.append(sorted(row["reject_key"] for row in rejects))
    assert keys[0] == keys[1]  # a rerun writes the same keys
