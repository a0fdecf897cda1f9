"""A database of the integration tests seen through its Airflow connection and SQL dialect: connections
opened as the SQL sink opens them (hook → dialect → ``prepare``), statements run in the dialect's cursor.

Imported by test modules (never by a conftest); the servers come from the fixtures.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.endpoints import Column
from airflow_provider_patsnap.sinks.dialects import SqlDialect, TableIdentity, dialect_for

KEY = "record_key"
COLUMNS = (
    Column(KEY, "VARCHAR(40)"),
    Column("pn", "TEXT"),
    Column("award_level", "VARCHAR(8)"),
    Column("award_year", "SMALLINT"),
)


class Session:
    """One connection of the sink's kind: its dialect (prepared) and the connection."""

    def __init__(self, conn_id: str) -> None:
        hook = BaseHook.get_connection(conn_id).get_hook()
        self.dialect: SqlDialect = dialect_for(hook, conn_id)
        self.connection: Any = hook.get_conn()
        self.dialect.prepare(self.connection)

    def resolve(self, table: str) -> TableIdentity:
        with self.dialect.cursor(self.connection) as cursor:
            identity = self.dialect.resolve_table(cursor, table)
        self.dialect.commit(self.connection)
        return identity

    def run(self, sql: str, parameters: Sequence[Any] | None = None) -> None:
        """One statement in its own transaction (DDL too: committed)."""
        with self.dialect.cursor(self.connection) as cursor:
            self.dialect.begin(self.connection, cursor, None)
            cursor.execute(sql, parameters) if parameters is not None else cursor.execute(sql)
        self.dialect.commit(self.connection)

    def ddl(self, sql: str) -> None:
        """DDL outside any explicit transaction (DuckDB commits it at once; MariaDB commits implicitly)."""
        with self.dialect.cursor(self.connection) as cursor:
            cursor.execute(sql)
        self.dialect.commit(self.connection)

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.dialect.cursor(self.connection) as cursor:
            cursor.execute(sql, parameters) if parameters is not None else cursor.execute(sql)
            rows = [tuple(row) for row in cursor.fetchall()]
        self.dialect.commit(self.connection)
        return rows

    def create(self, table: str, columns: Sequence[Column] = COLUMNS, key: str = KEY) -> TableIdentity:
        identity = self.resolve(table)
        self.ddl(self.dialect.create_table_sql(identity, columns, key))
        return identity

    def close(self) -> None:
        try:
            self.dialect.rollback(self.connection)
        finally:
            self.connection.close()


def table_exists(conn_id: str, table: str) -> bool:
    """Whether ``table`` (resolved as the SQL sink resolves it) exists in the database of ``conn_id``."""
    session = Session(conn_id)
    try:
        identity = session.resolve(table)
        with session.dialect.cursor(session.connection) as cursor:
            return session.dialect.describe(cursor, identity) is not None
    finally:
        session.close()


#: The engines the operators' SQL suites run on: MariaDB through both clients of the MySQL hook.
ENGINES = ("sqlite", "postgres", "mariadb", "mariadb-connector", "duckdb")
REFUSAL = "patsnap_test_refuse"  # the CHECK constraint (or, on SQLite, guard column) refuse() adds


def engine_connection(engine: str, request: pytest.FixtureRequest, name: str) -> str:
    """Airflow connection JSON for a fresh, empty database of ``engine`` (one of :data:`ENGINES`): a new
    file, or a new database on the session's PostgreSQL or MariaDB server."""
    from tests.helpers import fresh_postgres_database
    from tests.mariadb_server import fresh_mariadb_database

    if engine in ("sqlite", "duckdb"):
        path = request.getfixturevalue("tmp_path") / f"{name}.{'db' if engine == 'sqlite' else 'duckdb'}"
        return json.dumps({"conn_type": engine, "host": str(path)})
    if engine == "postgres":
        return fresh_postgres_database(request.getfixturevalue("postgres_server"))
    settings = json.loads(fresh_mariadb_database(request.getfixturevalue("mariadb_server")))
    if engine == "mariadb-connector":
        settings["extra"] = {"client": "mysql-connector-python"}
    return json.dumps(settings)


def refuse(conn_id: str, table: str, condition: str) -> None:
    """Make the database refuse the rows of ``table`` for which ``condition`` is false, as a CHECK
    constraint does: a value the database refuses, not the mapping. :func:`allow` undoes it."""
    session = Session(conn_id)
    try:
        name = session.dialect.name
        if name in ("postgresql", "mysql"):
            session.ddl(f"ALTER TABLE {table} ADD CONSTRAINT {REFUSAL} CHECK ({condition})")
        elif name == "sqlite":  # SQLite adds a CHECK only with a column
            session.ddl(f"ALTER TABLE {table} ADD COLUMN {REFUSAL} INTEGER CHECK ({condition})")
        else:  # DuckDB adds no CHECK to a table: the table is made again with it
            rebuild(session, table, condition)
    finally:
        session.close()


def allow(conn_id: str, table: str) -> None:
    """Undo :func:`refuse`."""
    session = Session(conn_id)
    try:
        name = session.dialect.name
        if name in ("postgresql", "mysql"):
            session.ddl(f"ALTER TABLE {table} DROP CONSTRAINT {REFUSAL}")
        elif name == "sqlite":
            session.ddl(f"ALTER TABLE {table} DROP COLUMN {REFUSAL}")
        else:
            rebuild(session, table, None)
    finally:
        session.close()


def rebuild(session: Session, table: str, check: str | None) -> None:
    """DuckDB: ``table`` made again with its columns, rows and primary key, and ``check`` (indexes go:
    the sink makes the one it needs again)."""
    identity = session.resolve(table)
    where = "WHERE schema_name = ? AND table_name = ?"
    columns = session.query(
        f"SELECT column_name, data_type FROM duckdb_columns() {where} ORDER BY column_index",
        [identity.schema, identity.name],
    )
    [(key,)] = session.query(
        f"SELECT constraint_column_names FROM duckdb_constraints() {where} AND constraint_type = 'PRIMARY KEY'",
        [identity.schema, identity.name],
    )
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns) + f", PRIMARY KEY ({', '.join(key)})"
    if check is not None:
        body += f", CONSTRAINT {REFUSAL} CHECK ({check})"
    session.ddl(f"CREATE TABLE {identity.qualified}_rebuilt ({body})")
    session.ddl(f"INSERT INTO {identity.qualified}_rebuilt SELECT * FROM {identity.qualified}")
    session.ddl(f"DROP TABLE {identity.qualified}")
    session.ddl(f"ALTER TABLE {identity.qualified}_rebuilt RENAME TO {identity.name}")


def records(conn_id: str, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (placeholders written ``%s``, turned into the database's), read through a
    session prepared as the sink prepares its own (utf8mb4 on MariaDB)."""
    session = Session(conn_id)
    try:
        return session.query(sql.replace("%s", session.dialect.placeholder), parameters)
    finally:
        session.close()


def execute(conn_id: str, sql: str) -> None:
    """One statement in its own committed transaction, on a session prepared as the sink's."""
    session = Session(conn_id)
    try:
        session.run(sql)
    finally:
        session.close()


class Sessions:
    """Opens sessions on one connection id and closes them all at the end of a test."""

    def __init__(self, conn_id: str, name: str = "") -> None:
        self.conn_id = conn_id
        self.name = name  # the engine: sqlite, postgres, mariadb, duckdb
        self.opened: list[Session] = []

    def open(self) -> Session:
        session = Session(self.conn_id)
        self.opened.append(session)
        return session

    def close(self) -> None:
        for session in reversed(self.opened):
            session.close()


def wait_until(condition: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    """Check ``condition`` until it holds (each check is a query or a look at another thread: an event
    observed, not time passing); fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting until {what}")


def in_function(thread: threading.Thread, name: str) -> bool:
    """``thread`` is running (or blocked) inside a function called ``name``."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False
