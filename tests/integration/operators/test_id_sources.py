"""Data operators reading their ids from a query or from files: streamed, sharded, every id once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.exceptions import InvalidPatentIdsError
from airflow_provider_patsnap.id_sources import FileIds, SqlIds
from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator
from airflow_provider_patsnap.sandbox import Sandbox
from tests.helpers import business, expected_rows, numbers, sorted_rows

LEGAL = ENDPOINTS["P026"]
IDS = numbers(730)


def load_portfolio(conn_id: str, ids: list[str]) -> None:
    hook = BaseHook.get_connection(conn_id).get_hook()
    hook.run("CREATE TABLE portfolio (pn TEXT, owner TEXT)")
    hook.insert_rows("portfolio", [(pn, "acme") for pn in ids], target_fields=["pn", "owner"])


def table_rows(conn_id: str, table: str) -> list[dict[str, Any]]:
    hook = BaseHook.get_connection(conn_id).get_hook()
    names = list(LEGAL.column_names)
    return [
        dict(zip(names, row, strict=True))
        for row in hook.get_records(f"SELECT {', '.join(names)} FROM {table}")
    ]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_ids_from_a_query_land_as_rows(
    patsnap: Sandbox, database: str, request: pytest.FixtureRequest
) -> None:
    conn_id = request.getfixturevalue("sqlite_conn" if database == "sqlite" else "fresh_postgres_conn")
    load_portfolio(conn_id, IDS)
    summary = PatsnapLegalInformationOperator(
        task_id="legal",
        patent_numbers=SqlIds(conn_id, "SELECT DISTINCT pn FROM portfolio WHERE owner = 'acme'"),
        sql_conn_id=conn_id,
    ).execute(context={})
    assert summary["requested"] == len(IDS)
    assert sorted_rows(table_rows(conn_id, LEGAL.default_table)) == sorted_rows(expected_rows(LEGAL, IDS))


def test_shards_of_one_query_fetch_every_id_once(patsnap: Sandbox, fresh_postgres_conn: str) -> None:
    load_portfolio(fresh_postgres_conn, IDS)
    specs = SqlIds(fresh_postgres_conn, "SELECT pn FROM portfolio").shards(4)
    summaries = [
        PatsnapLegalInformationOperator(
            task_id="legal", patent_numbers=spec, sql_conn_id=fresh_postgres_conn
        ).execute(context={})
        for spec in specs  # as .expand(patent_numbers=specs) hands them, one to each mapped task
    ]
    assert sum(summary["requested"] for summary in summaries) == len(IDS)
    assert all(summary["requested"] > 100 for summary in summaries)
    asked = [pn for record in business(patsnap, LEGAL.path) for pn in record.ids]
    assert sorted(asked) == sorted(IDS)  # every id once, in some shard
    assert sorted_rows(table_rows(fresh_postgres_conn, LEGAL.default_table)) == sorted_rows(
        expected_rows(LEGAL, IDS)
    )


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_with_id_column_each_shard_reads_only_its_slice(
    database: str, request: pytest.FixtureRequest
) -> None:
    conn_id = request.getfixturevalue("sqlite_conn" if database == "sqlite" else "fresh_postgres_conn")
    ids = numbers(4000)
    load_portfolio(conn_id, ids)
    specs = SqlIds(conn_id, "SELECT pn, owner FROM portfolio", id_column="pn").shards(4)
    read = [list(SqlIds(**{k: v for k, v in spec.items() if k != "source"}).values()) for spec in specs]
    assert sorted(value for part in read for value in part) == sorted(ids)  # every id once, in one shard
    assert all(600 < len(part) < 1400 for part in read), [len(part) for part in read]  # a quarter each


def test_a_postgres_query_is_read_through_a_server_side_cursor(fresh_postgres_conn: str) -> None:
    load_portfolio(fresh_postgres_conn, numbers(25_000))
    values = SqlIds(fresh_postgres_conn, "SELECT pn FROM portfolio").values()
    first = next(values)
    hook = BaseHook.get_connection(fresh_postgres_conn).get_hook()
    statements = [
        row[0]
        for row in hook.get_records(
            "SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE '%patsnap_ids%'"
        )
    ]
    assert any("FETCH" in statement.upper() for statement in statements), statements  # not the whole result
    assert first and sum(1 for _ in values) == 25_000 - 1


def test_a_bad_id_in_a_query_fails_before_any_call(patsnap: Sandbox, sqlite_conn: str) -> None:
    load_portfolio(sqlite_conn, [*numbers(120), "CN 1A"])
    operator = PatsnapLegalInformationOperator(
        task_id="legal",
        patent_numbers=SqlIds(sqlite_conn, "SELECT pn FROM portfolio"),
        sql_conn_id=sqlite_conn,
    )
    with pytest.raises(
        InvalidPatentIdsError, match=r"1 invalid patent_number value.* the query on 'warehouse'"
    ):
        operator.execute(context={})
    assert business(patsnap, LEGAL.path) == []


@pytest.mark.parametrize("layout", ["csv", "ndjson", "folder"])
def test_ids_from_files_land_as_rows(patsnap: Sandbox, sqlite_conn: str, tmp_path: Path, layout: str) -> None:
    if layout == "csv":
        (tmp_path / "ids.csv").write_text("pn\n" + "\n".join(IDS) + "\n", encoding="utf-8")
        source = FileIds(str(tmp_path / "ids.csv"), column="pn")
    elif layout == "ndjson":
        (tmp_path / "ids.jsonl").write_text("\n".join(f'{{"pn": "{pn}"}}' for pn in IDS), encoding="utf-8")
        source = FileIds(f"file://{tmp_path / 'ids.jsonl'}", column="pn")
    else:
        for part in range(3):
            (tmp_path / f"part-{part}.csv").write_text(
                "pn\n" + "\n".join(IDS[part::3]) + "\n", encoding="utf-8"
            )
        source = FileIds(str(tmp_path))
    summary = PatsnapLegalInformationOperator(
        task_id="legal", patent_numbers=source, sql_conn_id=sqlite_conn
    ).execute(context={})
    assert summary["requested"] == len(IDS)
    assert sorted_rows(table_rows(sqlite_conn, LEGAL.default_table)) == sorted_rows(expected_rows(LEGAL, IDS))


def test_a_budget_on_a_streamed_source_stops_and_says_what_was_not_asked(
    patsnap: Sandbox, sqlite_conn: str
) -> None:
    from airflow_provider_patsnap.exceptions import PatsnapBudgetError

    load_portfolio(sqlite_conn, IDS)
    operator = PatsnapLegalInformationOperator(
        task_id="legal",
        patent_numbers=SqlIds(sqlite_conn, "SELECT pn FROM portfolio"),
        sql_conn_id=sqlite_conn,
        max_billed_units=250,
    )
    with pytest.raises(PatsnapBudgetError) as stopped:
        operator.execute(context={})
    summary = stopped.value.summary or {}
    assert summary["billed_units"] <= 250 < summary["billed_units"] + 100
    asked = sum(len(record.ids) for record in business(patsnap, LEGAL.path))
    assert summary["not_fetched"] == len(IDS) - asked
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("patsnap-P026-")]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_rerun_of_a_source_with_refresh_after_requests_nothing(
    patsnap: Sandbox, database: str, request: pytest.FixtureRequest
) -> None:
    """A source's chunks are checked for freshness as the calls go out, on the pipeline's own thread:
    SQLite refuses a connection made on another thread, so that check has a connection of its own."""
    conn_id = request.getfixturevalue("sqlite_conn" if database == "sqlite" else "fresh_postgres_conn")
    load_portfolio(conn_id, IDS[:250])

    def run() -> dict[str, Any]:
        return PatsnapLegalInformationOperator(
            task_id="legal",
            patent_numbers=SqlIds(conn_id, "SELECT DISTINCT pn FROM portfolio"),
            sql_conn_id=conn_id,
            refresh_after="7d",
        ).execute(context={})

    first, second = run(), run()
    assert first["requested"] == 250 and first["skipped_fresh"] == 0 and first["billed_units"] > 0
    assert second["skipped_fresh"] == 250 and second["billed_units"] == 0 and second["calls"] == 0
