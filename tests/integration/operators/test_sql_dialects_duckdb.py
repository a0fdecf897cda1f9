"""DuckDB files through apache-airflow-providers-duckdb's hook: what the dialect works around (no
savepoints, aborted transactions, cursors that are connections of their own, one writing process a file)
and what it relies on."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.sinks.dialects import DuckDBDialect
from tests.sql_engines import COLUMNS, KEY, Session, Sessions


@pytest.fixture
def duck(duckdb_conn: str) -> Iterator[Sessions]:
    sessions = Sessions(duckdb_conn, "duckdb")
    yield sessions
    sessions.close()


def test_the_hook_is_the_duckdb_providers(duck: Sessions) -> None:
    hook = BaseHook.get_connection(duck.conn_id).get_hook()
    assert type(hook).__module__ == "airflow.providers.duckdb.hooks.duckdb"
    assert (hook.dialect_name, hook.placeholder) == ("duckdb", "?")
    assert type(duck.open().dialect) is DuckDBDialect


def test_a_write_is_one_transaction_on_the_connection_not_on_its_cursors(duck: Sessions) -> None:
    """A DuckDB cursor is another connection: what runs on it is not undone by the connection's
    rollback. The dialect's cursor is the connection, so a write rolls back whole."""
    session, reader = duck.open(), duck.open()
    table = session.create("awards")
    upsert = session.dialect.upsert(table, COLUMNS, KEY)
    with session.dialect.cursor(session.connection) as cursor:
        assert cursor is session.connection
        session.dialect.begin(session.connection, cursor, None)
        upsert.many(cursor, [("k1", "CN1A", "gold", 2020)])
        assert reader.query(f"SELECT count(*) FROM {table.qualified}") == [(0,)]  # not committed yet
    session.dialect.rollback(session.connection)
    assert reader.query(f"SELECT count(*) FROM {table.qualified}") == [(0,)]
    own_cursor = session.connection.cursor()
    own_cursor.execute(f"INSERT INTO {table.qualified} ({KEY}) VALUES ('k2')")  # commits by itself
    session.dialect.rollback(session.connection)  # nothing open here: no error, nothing undone
    assert reader.query(f"SELECT {KEY} FROM {table.qualified}") == [("k2",)]


def test_no_savepoints_so_refused_rows_are_found_by_trying_each_alone(duck: Sessions) -> None:
    session = duck.open()
    table = session.create("refusals")
    upsert = session.dialect.upsert(table, COLUMNS, KEY)
    rows = [("k1", "CN1A", "gold", 2020), ("k2", "CN2A", "gold", 70000), ("k3", "CN3A", "far too long", 2021)]
    connection = session.connection
    connection.execute("BEGIN TRANSACTION")
    with pytest.raises(Exception, match="SAVEPOINT"):
        connection.execute("SAVEPOINT patsnap_row")
    session.dialect.rollback(connection)
    connection.execute("BEGIN TRANSACTION")
    with pytest.raises(Exception) as refused:
        upsert.many(connection, rows)
    assert session.dialect.is_data_error(refused.value)
    with pytest.raises(Exception, match="aborted"):  # nothing more in this transaction
        upsert.one(connection, rows[0])
    session.dialect.rollback(connection)
    found = session.dialect.refused(connection, upsert, rows)
    assert list(found) == [1]  # SMALLINT out of range; VARCHAR(8) is not enforced: k3 is stored whole
    with session.dialect.cursor(connection) as cursor:
        session.dialect.begin(connection, cursor, table)
        upsert.many(cursor, [row for index, row in enumerate(rows) if index not in found])
    session.dialect.commit(connection)
    assert session.query(f"SELECT {KEY}, award_level FROM {table.qualified} ORDER BY {KEY}") == [
        ("k1", "gold"),
        ("k3", "far too long"),
    ]


def test_a_conflicting_write_of_another_connection_is_retryable(duck: Sessions) -> None:
    """What the dialect's turn (its begin) keeps from happening between the sink's writers, when two
    transactions are opened without it: the second writer of a row fails, and is told to try again."""
    a, b = duck.open(), duck.open()
    table = a.create("conflict")
    a.run(f"INSERT INTO {table.qualified} ({KEY}) VALUES ('k1')")
    update = f"UPDATE {table.qualified} SET award_level = ? WHERE {KEY} = 'k1'"
    for session in (a, b):
        session.connection.execute("BEGIN TRANSACTION")
    a.connection.execute(update, ["a"])
    with pytest.raises(Exception) as conflict:
        b.connection.execute(update, ["b"])
    assert b.dialect.is_retryable(conflict.value) and not b.dialect.is_data_error(conflict.value)
    a.dialect.commit(a.connection)
    b.dialect.rollback(b.connection)


def test_lists_of_values_bind_as_one_list(duck: Sessions) -> None:
    session = duck.open()
    table = session.create("keys")
    upsert = session.dialect.upsert(table, COLUMNS, KEY)
    with session.dialect.cursor(session.connection) as cursor:
        session.dialect.begin(session.connection, cursor, None)
        upsert.many(cursor, [(f"k{number}", f"CN{number}A", "gold", 2020) for number in range(5000)])
        [(condition, parameters)] = session.dialect.value_list().chunks(KEY, ["k1", "k2", "nope"])
        cursor.execute(f"DELETE FROM {table.qualified} WHERE {condition}", parameters)
    session.dialect.commit(session.connection)
    assert session.query(f"SELECT count(*) FROM {table.qualified}") == [(4998,)]


def test_many_rows_go_as_one_statement(duck: Sessions) -> None:
    """5,000 rows inserted, then updated, by :class:`UnnestUpsert`; ``executemany`` takes seconds."""
    session = duck.open()
    table = session.create("bulk")
    upsert = session.dialect.upsert(table, COLUMNS, KEY)
    timings = []
    for level in ("gold", "silver"):
        rows = [(f"k{number}", f"CN{number}A", level, 2020) for number in range(5000)]
        started = time.perf_counter()
        with session.dialect.cursor(session.connection) as cursor:
            session.dialect.begin(session.connection, cursor, None)
            upsert.many(cursor, rows)
        session.dialect.commit(session.connection)
        timings.append(time.perf_counter() - started)
    assert session.query(f"SELECT award_level, count(*) FROM {table.qualified} GROUP BY 1") == [
        ("silver", 5000)
    ]
    print(f"DuckDB UnnestUpsert, 5,000 rows: insert {timings[0]:.3f} s, update {timings[1]:.3f} s")


def test_another_process_cannot_open_the_file_while_a_task_writes_it(duck: Sessions) -> None:
    """What keeps two tasks apart on one DuckDB file: the file lock of the process that opened it."""
    session = duck.open()
    session.create("held")
    path = BaseHook.get_connection(duck.conn_id).host
    other = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({path!r})"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert other.returncode != 0 and "lock" in other.stderr.lower(), other.stderr[-2000:]


def test_identity_names_the_database_file(duck: Sessions) -> None:
    session: Session = duck.open()
    identity = session.resolve("PATSNAP_AWARD")
    assert identity == ("warehouse", "main", "patsnap_award")  # the file warehouse.duckdb
