"""Shards writing to one table at once (PostgreSQL, MariaDB, DuckDB): creation races, overlapping upserts,
deadlocks."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import pytest

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.endpoints import AWARD, Row
from airflow_provider_patsnap.sinks.base import FetchedBatch
from airflow_provider_patsnap.sinks.names import RESERVED_WORDS
from airflow_provider_patsnap.sinks.sql import SqlSink
from tests.helpers import fresh_postgres_database, postgres_admin, with_values
from tests.sql_engines import engine_connection, records


@pytest.fixture
def fresh_postgres(postgres_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_PG_FRESH", fresh_postgres_database(postgres_server))
    return "pg_fresh"


@pytest.fixture(params=["postgres", "mariadb", "duckdb"])
def shared(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection id to a fresh database that several sinks of this process write at once."""
    monkeypatch.setenv("AIRFLOW_CONN_SHARED", engine_connection(request.param, request, "shared"))
    return "shared"


FETCHED = FetchedBatch([], "2026-01-01T00:00:00+00:00")


def award_rows(count: int, name: str) -> list[Row]:
    rows = []
    for number in range(count):
        patent = {
            "pn": f"CN{number}A",
            "patent_id": f"p{number}",
            "patent_award_data": [{"award_name": "Gold"}],
        }
        [row] = AWARD.map_patent(patent, "2026-01-01T00:00:00+00:00").rows
        rows.append(with_values(AWARD, row, award_level=name))
    return rows


def together(workers: Sequence[Callable[[], None]]) -> list[BaseException]:
    """Run ``workers`` in threads released at one moment; return what they raised."""
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        start.wait()
        try:
            work()
        except BaseException as error:  # reported to the test, which fails on it
            errors.append(error)

    threads = [threading.Thread(target=run, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


class Writer:
    """Writes ``rows`` to ``table`` through a sink of its own, kept for the test to read its counts."""

    def __init__(self, conn_id: str, table: str, rows: list[Row]) -> None:
        self.conn_id, self.table, self.rows = conn_id, table, rows
        self.sink: SqlSink | None = None

    def __call__(self) -> None:
        with SqlSink(self.conn_id, self.table, AWARD.columns, endpoint="P032") as self.sink:
            self.sink.write_batch(self.rows, (), FETCHED)


def write(conn_id: str, table: str, rows: list[Row]) -> Writer:
    return Writer(conn_id, table, rows)


def test_four_shards_creating_one_new_table_together_all_succeed(shared: str) -> None:
    rows = award_rows(5, "x")
    for round_number in range(16):
        table = f"race_{round_number}"
        errors = together([write(shared, table, rows) for _ in range(4)])
        assert errors == [], f"round {round_number}: {errors}"
        assert records(shared, f"SELECT COUNT(*) FROM {table}") == [(5,)]


def test_overlapping_upserts_in_opposite_orders_do_not_deadlock(shared: str) -> None:
    """On PostgreSQL and MariaDB the sorted keys make the two writers lock rows in one order; DuckDB's
    writers of one process take turns. No deadlock, no conflict: no write is repeated."""
    forward = award_rows(3000, "forward")
    write(shared, "overlap", forward[:1])()  # the table exists before the race
    for round_number in range(5):
        backward = [with_values(AWARD, row, award_level="backward") for row in reversed(forward)]
        writers = [write(shared, "overlap", forward), write(shared, "overlap", backward)]
        errors = together(writers)
        assert errors == [], f"round {round_number}: {errors}"
        # A deadlock is retried and hidden from `errors`: the sorted keys must make none happen at all.
        retries = [writer.sink.write_retries for writer in writers if writer.sink is not None]
        assert retries == [0, 0], f"round {round_number}: writes repeated after a deadlock: {retries}"
        levels = records(shared, "SELECT DISTINCT award_level FROM overlap")
        assert len(levels) == 1, levels  # each writer's rows landed whole: one wrote every row last
    assert records(shared, "SELECT COUNT(*) FROM overlap") == [(3000,)]


def test_a_deadlock_repeats_the_write_of_the_same_rows(fresh_postgres: str) -> None:
    connection = BaseHook.get_connection(fresh_postgres)
    connect: dict[str, Any] = {
        "host": connection.host,
        "port": connection.port,
        "user": connection.login,
        "dbname": connection.schema,
    }
    rows = award_rows(3, "first")
    keys = sorted(row[0] for row in rows)  # record_key
    sink = SqlSink(fresh_postgres, "locked", AWARD.columns, endpoint="P032")
    sink.write_batch(rows, (), FETCHED)
    blocker = psycopg.connect(**connect)
    watcher = psycopg.connect(**connect, autocommit=True)
    try:
        blocker.execute("SET deadlock_timeout = '10min'")  # so the sink, not the blocker, is the victim
        blocker.execute("UPDATE locked SET award_level = 'blocker' WHERE record_key = %s", (keys[-1],))
        errors = []
        writer = threading.Thread(
            target=lambda: errors.extend(
                together([lambda: sink.write_batch(award_rows(3, "second"), (), FETCHED)])
            )
        )
        writer.start()
        deadline = time.monotonic() + 30
        waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s"
        while watcher.execute(waiting, (connect["dbname"],)).fetchone() != (1,):  # the sink waits on keys[-1]
            assert time.monotonic() < deadline, "the sink never waited on the blocked row"
            time.sleep(0.01)
        # Lock the sink's first row: a deadlock PostgreSQL resolves by aborting the sink's transaction.
        blocker.execute("UPDATE locked SET award_level = 'blocker' WHERE record_key = %s", (keys[0],))
        blocker.commit()
        writer.join(timeout=60)
        assert errors == [] and sink.write_retries == 1
        stored = (
            BaseHook.get_connection(fresh_postgres).get_hook().get_records("SELECT award_level FROM locked")
        )
        assert sorted(level for (level,) in stored) == ["second"] * 3  # the repeated write landed whole
    finally:
        sink.close(ok=True)
        blocker.close()
        watcher.close()


def fails(statement: Callable[[], Any]) -> bool:
    try:
        statement()
    except (sqlite3.DatabaseError, psycopg.Error):
        return True
    return False


def test_each_reserved_word_fails_as_a_table_name_in_sqlite_or_postgres(postgres_server: str) -> None:
    with postgres_admin(postgres_server) as postgres:
        for word in sorted(RESERVED_WORDS):
            sql = f"CREATE TABLE {word} (record_key TEXT PRIMARY KEY)"
            in_sqlite = fails(lambda sql=sql: sqlite3.connect(":memory:").execute(sql))
            in_postgres = fails(lambda sql=sql: postgres.execute(sql))
            assert in_sqlite or in_postgres, f"{word!r} works as a table name in both: not reserved"
            if not in_postgres:
                postgres.execute(f"DROP TABLE {word}")
