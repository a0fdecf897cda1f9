"""DuckDB (an embedded file, through apache-airflow-providers-duckdb's ``DuckDBHook``).

What differs from the client-server databases, measured on DuckDB 2.0:

- one process at a time opens a file for writing (another gets "Could not set lock on file"); inside a
  process, connections to one file share it, and two transactions writing one table conflict: "Conflict
  on update", or a key both inserted refused as a duplicate (a ``ConstraintException``, which would pass
  for a refused value). So every write of the process to a file, and every ``CREATE``, takes its turn
  under one process-wide lock per file, held from ``BEGIN`` to the commit or rollback: in ``merge`` too,
  not only for ``sync`` and ``history`` as elsewhere;
- the DB-API connection commits every statement unless ``BEGIN`` opened a transaction, and
  ``connection.cursor()`` is another connection with its own transactions: the sink's statements run on
  the connection itself (:meth:`DuckDBDialect.cursor`);
- no ``SAVEPOINT``; a failed statement aborts the transaction ("Current transaction is aborted"): a
  refused row is found by :meth:`SqlDialect.refused`, each row tried in a transaction rolled back;
- ``VARCHAR(n)`` is not enforced (a longer value is stored whole);
- ``executemany`` prepares and runs one statement a row (about 500 rows/s): :class:`UnnestUpsert` sends
  each column as one list instead (5,000 rows in 0.02 s).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from airflow_provider_patsnap.endpoints import Column
from airflow_provider_patsnap.sinks.dialects.base import (
    SqlDialect,
    TableIdentity,
    TableShape,
    Upsert,
    on_conflict,
)

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _process_lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def list_type(sql_type: str) -> str:
    """The DuckDB list type a column's values travel in: ``VARCHAR(40)`` → ``VARCHAR[]``."""
    base = sql_type.split("(")[0].strip().upper()
    return f"{'VARCHAR' if base in ('TEXT', 'VARCHAR', 'CHAR') else base}[]"


class UnnestUpsert(Upsert):
    """Many rows as one statement: each column bound as one list and ``unnest``-ed side by side."""

    def __init__(self, sql: str, table: str, columns: Sequence[Column], key: str) -> None:
        super().__init__(sql, columns, key)
        names = [column.name for column in self.columns]
        lists = ", ".join(f"unnest(?::{list_type(column.sql_type)})" for column in self.columns)
        self.bulk_sql = (
            f"INSERT INTO {table} ({', '.join(names)}) SELECT * FROM (SELECT {lists}) "
            f"ON CONFLICT ({key}) {on_conflict(names, key)}"
        )

    def many(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cursor.execute(self.bulk_sql, [list(values) for values in zip(*rows, strict=True)])


class DuckDBDialect(SqlDialect):
    name = "duckdb"
    label = "DuckDB"
    default_placeholder = "?"
    arrays: ClassVar[bool] = True  # column = ANY(?) with a Python list
    savepoints: ClassVar[bool] = False

    def __init__(self, placeholder: str | None = None) -> None:
        super().__init__(placeholder)
        self._held: list[threading.Lock] = []
        self._database = ""  # the file, for the process-wide lock's key

    def prepare(self, connection: Any) -> None:
        """Which file this is, for the process-wide lock of its writers."""
        self._database = self._file(connection)

    @staticmethod
    def _file(cursor: Any) -> str:
        cursor.execute(
            "SELECT coalesce(path, database_name) FROM duckdb_databases() WHERE database_name = current_database()"
        )
        return str(cursor.fetchone()[0])

    def resolve_table(self, cursor: Any, table: str) -> TableIdentity:
        """DuckDB compares names without case: lower case. The catalog is the database the connection
        uses (``current_database()``), the schema ``current_schema()`` unless the name gives one."""
        cursor.execute("SELECT current_database(), current_schema()")
        catalog, current = cursor.fetchone()
        self._database = self._database or self._file(cursor)
        written_schema, _, written_name = table.rpartition(".")
        return TableIdentity(str(catalog), self.fold(written_schema or str(current)), self.fold(written_name))

    @contextmanager
    def cursor(self, connection: Any) -> Iterator[Any]:
        """The connection itself: a DuckDB cursor is a connection of its own, outside this transaction."""
        yield connection

    def begin(
        self, connection: Any, cursor: Any, lock: TableIdentity | None, row_by_row: bool = False
    ) -> None:
        """Every write takes the file's turn (``lock`` or not), before ``BEGIN``: its snapshot then holds
        what the last writer committed."""
        self.lock_table(cursor, lock)
        cursor.execute("BEGIN TRANSACTION")

    def lock_table(self, cursor: Any, identity: TableIdentity | None) -> None:
        """The process-wide lock of the file (one for every table of it: a write of one table also
        writes its ``_state`` and ``_rejects`` tables)."""
        lock = _process_lock(self._database or self._file(cursor))
        if lock not in self._held:
            lock.acquire()
            self._held.append(lock)

    def release_locks(self, connection: Any) -> None:
        held, self._held = self._held, []
        for lock in held:
            lock.release()

    def rollback(self, connection: Any) -> None:
        """Without an open transaction DuckDB refuses a rollback: nothing to undo then."""
        try:
            connection.rollback()
        except Exception as error:
            if "no transaction is active" not in str(error):
                raise
        finally:
            self.release_locks(connection)

    def describe(self, cursor: Any, identity: TableIdentity) -> TableShape | None:
        where = "WHERE database_name = ? AND schema_name = ? AND lower(table_name) = ?"
        cursor.execute(f"SELECT column_name FROM duckdb_columns() {where}", list(identity))
        found = frozenset(str(column).lower() for (column,) in cursor.fetchall())
        if not found:
            return None
        cursor.execute(
            f"SELECT constraint_column_names FROM duckdb_constraints() {where} "
            "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
            list(identity),
        )
        unique = {tuple(str(column).lower() for column in columns) for (columns,) in cursor.fetchall()}
        cursor.execute(f"SELECT is_unique, expressions FROM duckdb_indexes() {where}", list(identity))
        indexes = set(unique)
        for is_unique, expressions in cursor.fetchall():
            columns = tuple(
                part.strip().strip('"').lower() for part in str(expressions).strip("[]").split(",")
            )
            indexes.add(columns)
            if is_unique:
                unique.add(columns)
        return TableShape(found, frozenset(unique), frozenset(indexes))

    def upsert(self, identity: TableIdentity, columns: Sequence[Column], key: str) -> Upsert:
        return UnnestUpsert(super().upsert(identity, columns, key).sql, identity.qualified, columns, key)

    def is_data_error(self, error: BaseException) -> bool:
        if super().is_data_error(error):  # Conversion/OutOfRange (DataError), Constraint (IntegrityError)
            return True
        return type(error).__name__ == "InvalidInputException" and "Conversion Failure" in str(error)

    def is_retryable(self, error: BaseException) -> bool:
        """A transaction that lost to another of this process: "Conflict on update", a "write-write
        conflict" on the catalog, or, at commit, a key the other transaction inserted first ("Failed to
        commit: PRIMARY KEY or UNIQUE constraint violation"; a statement's own duplicate is a
        ConstraintException instead)."""
        if super().is_retryable(error):
            return True
        text = str(error)
        return type(error).__name__ == "TransactionException" and (
            "conflict" in text.lower() or "Failed to commit" in text
        )
