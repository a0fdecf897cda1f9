"""A database of the integration tests seen through its Airflow connection and SQL dialect: connections
opened as the SQL sink opens them (hook → dialect → ``prepare``), statements run in the dialect's cursor.

Imported by test modules (never by a conftest); the servers come from the fixtures.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

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
