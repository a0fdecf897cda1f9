"""The SQL dialects against the real engines: SQLite and DuckDB files, and the PostgreSQL and MariaDB
servers the tests start. Each test runs on all four; the engine-specific ones are in
test_sql_dialects_mariadb.py and test_sql_dialects_duckdb.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_patsnap.endpoints import Column
from airflow_provider_patsnap.ids import match_key
from airflow_provider_patsnap.sinks.base import FetchedBatch, FetchedPatent, WriteCounts
from airflow_provider_patsnap.sinks.dialects import (
    DuckDBDialect,
    MySqlDialect,
    PostgresDialect,
    SqliteDialect,
    TableIdentity,
)
from airflow_provider_patsnap.sinks.sql_modes import HISTORY_COLUMNS, VERSION_KEY, ModeWriter, scope_of
from tests.helpers import fresh_postgres_database
from tests.mariadb_server import fresh_mariadb_database
from tests.sql_engines import COLUMNS, KEY, Session, Sessions, in_function, wait_until

ENGINES = ["sqlite", "postgres", "mariadb", "duckdb"]
DIALECT_CLASSES = {
    "sqlite": SqliteDialect,
    "postgres": PostgresDialect,
    "mariadb": MySqlDialect,
    "duckdb": DuckDBDialect,
}


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sessions]:
    """Sessions on a fresh database of each engine (a new file, or a new database on the server)."""
    name = request.param
    if name == "sqlite":
        conn_id = request.getfixturevalue("sqlite_conn")
    elif name == "duckdb":
        conn_id = request.getfixturevalue("duckdb_conn")
    else:
        server = request.getfixturevalue(f"{name}_server")
        fresh = fresh_postgres_database if name == "postgres" else fresh_mariadb_database
        conn_id = f"{name}_fresh"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", fresh(server))
    sessions = Sessions(conn_id, name)
    yield sessions
    sessions.close()


def test_each_real_hook_gets_its_dialect(engine: Sessions) -> None:
    session = engine.open()
    assert type(session.dialect) is DIALECT_CLASSES[engine.name]


def test_the_upsert_updates_rows_in_place(engine: Sessions) -> None:
    """A column the upsert does not name keeps its value: the row was updated, not deleted and
    re-inserted (as ``REPLACE INTO`` does)."""
    session = engine.open()
    table = session.create("awards", [*COLUMNS, Column("kept", "INTEGER")])
    upsert = session.dialect.upsert(table, COLUMNS, KEY)
    with session.dialect.cursor(session.connection) as cursor:
        session.dialect.begin(session.connection, cursor, None)
        upsert.many(cursor, [("k1", "CN1A", "gold", 2020), ("k2", "CN2A", "silver", 2021)])
    session.dialect.commit(session.connection)
    session.run(f"UPDATE {table.qualified} SET kept = 99")
    with session.dialect.cursor(session.connection) as cursor:
        session.dialect.begin(session.connection, cursor, None)
        upsert.many(cursor, [("k1", "CN1A", "bronze", 2022)])
        upsert.one(cursor, ("k2", "CN2A", "gold", 2023))
        upsert.many(cursor, [("k3", "CN3A", "gold", 2024)])
    session.dialect.commit(session.connection)
    assert session.query(
        f"SELECT {KEY}, award_level, award_year, kept FROM {table.qualified} ORDER BY {KEY}"
    ) == [
        ("k1", "bronze", 2022, 99),
        ("k2", "gold", 2023, 99),
        ("k3", "gold", 2024, None),
    ]


def test_a_table_is_described_without_sqlalchemy(engine: Sessions) -> None:
    session = engine.open()
    table = session.resolve("described")
    with session.dialect.cursor(session.connection) as cursor:
        assert session.dialect.describe(cursor, table) is None
    session.create("described")
    for _ in range(2):  # IF NOT EXISTS (MariaDB: a TEXT column on a prefix)
        session.ddl(session.dialect.create_index_sql(table, COLUMNS[1]))
    with session.dialect.cursor(session.connection) as cursor:
        shape = session.dialect.describe(cursor, table)
    assert shape is not None
    assert shape.columns == {"record_key", "pn", "award_level", "award_year"}
    assert shape.unique_keys == {(KEY,)}
    assert ("pn",) in shape.indexes


SPELLINGS = {
    "sqlite": ["t", "main.t", "T", "MAIN.T"],
    "postgres": ["t", "public.t", "T", "PUBLIC.T"],
    "duckdb": ["t", "main.t", "T", "Main.T"],
}


@pytest.mark.parametrize("created", [False, True], ids=["new", "existing"])
def test_every_spelling_of_one_table_resolves_to_one_identity(engine: Sessions, created: bool) -> None:
    session = engine.open()
    if engine.name == "mariadb":  # the schema is the database; names as written (lower_case_table_names=0)
        database = session.query("SELECT DATABASE()")[0][0]
        spellings = ["t", f"{database}.t"]
        assert session.resolve("T") != session.resolve("t")
    else:
        spellings = SPELLINGS[engine.name]
    if created:
        session.create(spellings[0])
    identities = {session.resolve(spelling) for spelling in spellings}
    assert len(identities) == 1, identities
    [identity] = identities
    assert identity.name == "t"
    expected_schema = {"sqlite": "main", "postgres": "public", "duckdb": "main"}.get(engine.name)
    if expected_schema:
        assert identity.schema == expected_schema


def test_the_table_lock_keeps_two_writers_apart(engine: Sessions) -> None:
    """Writer B, locking the table under another spelling, waits for writer A's commit and then sees
    A's row: a ``sync`` or ``history`` write reads after the other committed."""
    a = engine.open()
    table = a.create("locked")
    if engine.name == "mariadb":
        spelling_b = f"{a.query('SELECT DATABASE()')[0][0]}.locked"
    else:
        spelling_b = {"postgres": "public.LOCKED", "sqlite": "main.Locked", "duckdb": "LOCKED"}[engine.name]
    watcher = engine.open() if engine.name in ("postgres", "mariadb") else None
    upsert = a.dialect.upsert(table, COLUMNS, KEY)
    with a.dialect.cursor(a.connection) as cursor:
        a.dialect.begin(a.connection, cursor, table)
        upsert.one(cursor, ("a", "CN1A", "gold", 2020))
    seen: dict[str, Any] = {}
    locking = threading.Event()

    def writer_b() -> None:
        b = Session(engine.conn_id)  # in its thread: sqlite3 connections stay in theirs
        try:
            table_b = seen["identity"] = b.resolve(spelling_b)
            with b.dialect.cursor(b.connection) as cursor:
                locking.set()
                b.dialect.begin(b.connection, cursor, table_b)
                cursor.execute(f"SELECT {KEY} FROM {table_b.qualified}")
                seen["rows"] = sorted(row[0] for row in cursor.fetchall())
            b.dialect.commit(b.connection)
        except BaseException as error:  # reported by the assertions below
            seen["error"] = error
        finally:
            b.close()

    thread = threading.Thread(target=writer_b)
    thread.start()
    locking.wait()
    wait_until(
        lambda: not thread.is_alive() or b_waits(engine.name, watcher, thread), "writer B waits for the lock"
    )
    assert seen == {"identity": table}  # B waits, under its spelling, for A's lock
    a.dialect.commit(a.connection)
    thread.join(timeout=60)
    assert seen == {"identity": table, "rows": ["a"]}


def b_waits(engine: str, watcher: Session | None, thread: threading.Thread) -> bool:
    """Writer B is blocked on the table lock, as the server (or B's thread) shows it."""
    if engine == "postgres":
        assert watcher is not None
        return bool(
            watcher.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[0][0]
        )
    if engine == "mariadb":
        assert watcher is not None
        sql = "SELECT count(*) FROM information_schema.PROCESSLIST WHERE STATE = 'User lock'"
        return bool(watcher.query(sql)[0][0])
    return in_function(thread, "lock_table" if engine == "duckdb" else "begin")


def award(key: str, pn: str, level: str) -> tuple[Any, ...]:
    """A row as the sink carries it: a tuple in COLUMNS' order, the record key first."""
    return (key, pn, level, 2020)


def test_the_sync_and_history_sql_runs_with_the_dialects_value_lists(engine: Sessions) -> None:
    """sql_modes.ModeWriter's statements (IN lists or ``= ANY``), with the dialect's value list, delete
    what vanished (``sync``) and close and open versions (``history``: ``MAX(COALESCE(valid_to,
    valid_from))``) on each engine."""
    session = engine.open()
    dialect, names = session.dialect, [column.name for column in COLUMNS]
    history_columns = (*COLUMNS, *HISTORY_COLUMNS)
    synced, history = session.create("synced"), session.create("history", history_columns, VERSION_KEY)

    def write(table: TableIdentity, mode: str, rows: list[tuple[Any, ...]], fetched_at: str) -> WriteCounts:
        batch = FetchedBatch([FetchedPatent("CN1A", match_key("CN1A"), "CN1A", len(rows), False)], fetched_at)
        writer, counts = ModeWriter(table.qualified, "pn", names, dialect.value_list()), WriteCounts()
        columns = history_columns if mode == "history" else COLUMNS
        upsert = dialect.upsert(table, columns, VERSION_KEY if mode == "history" else KEY)
        with dialect.cursor(session.connection) as cursor:
            dialect.begin(session.connection, cursor, table)
            scope = scope_of(batch, {})
            if mode == "sync":
                writer.remove_vanished(cursor, rows, scope, counts)
            else:
                rows = writer.versions(cursor, rows, scope, fetched_at, counts)
            upsert.many(cursor, rows)  # history: each version's values, then HISTORY_COLUMNS'

        dialect.commit(session.connection)
        return counts

    january, february = "2026-01-10T09:00:00+00:00", "2026-02-10T09:00:00+00:00"
    first = [award("k1", "CN1A", "gold"), award("k2", "CN1A", "silver")]
    write(synced, "sync", first, january)
    assert write(synced, "sync", first[:1], february).rows_removed == 1
    assert session.query(f"SELECT {KEY} FROM {synced.qualified}") == [("k1",)]

    write(history, "history", first, january)
    counts = write(history, "history", [award("k1", "CN1A", "bronze")], february)
    assert (counts.versions_opened, counts.versions_closed) == (1, 2)
    rows = session.query(
        f"SELECT {KEY}, award_level, valid_from, valid_to, is_current FROM {history.qualified}"
    )
    assert sorted(rows) == [
        ("k1", "bronze", february, None, 1),
        ("k1", "gold", january, february, 0),
        ("k2", "silver", january, february, 0),
    ]
