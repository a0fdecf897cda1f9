"""SQLite (the standard library's sqlite3): names compared without case, ``main`` unless attached, the
whole file locked by ``BEGIN IMMEDIATE``."""

from __future__ import annotations

from typing import Any

from airflow_provider_patsnap.endpoints import Column
from airflow_provider_patsnap.sinks.dialects.base import SqlDialect, TableIdentity, TableShape

_BUSY = ("database is locked", "database table is locked")  # SQLITE_BUSY, SQLITE_LOCKED


class SqliteDialect(SqlDialect):
    name = "sqlite"
    label = "SQLite"
    default_placeholder = "?"

    def resolve_table(self, cursor: Any, table: str) -> TableIdentity:
        """SQLite compares names without case: the identity is in lower case. An unqualified name is the
        first schema that has it (``temp``, ``main``, then attached files, as SQLite looks it up), else
        ``main``, where ``CREATE TABLE`` puts it. ``catalog`` is the schema's file ("" in memory)."""
        written_schema, _, written_name = table.rpartition(".")
        name = self.fold(written_name)
        cursor.execute("SELECT name, file FROM pragma_database_list ORDER BY seq")
        files = {str(schema).lower(): str(file or "") for schema, file in cursor.fetchall()}
        if written_schema:
            schema = self.fold(written_schema)
        else:
            schema = "main"
            for candidate in sorted(files, key=lambda item: (item != "temp", item != "main")):
                cursor.execute(
                    f"SELECT 1 FROM {candidate}.sqlite_master WHERE type IN ('table', 'view') "
                    "AND name = ? COLLATE NOCASE",
                    (name,),
                )
                if cursor.fetchone() is not None:
                    schema = candidate
                    break
        return TableIdentity(files.get(schema, ""), schema, name)

    def begin(
        self, connection: Any, cursor: Any, lock: TableIdentity | None, row_by_row: bool = False
    ) -> None:
        """``BEGIN IMMEDIATE`` for ``sync`` and ``history`` (read and write under one lock of the file, no
        other writer between) and before savepoints (else sqlite3 commits at the outermost ``RELEASE``);
        a plain write lets sqlite3 open its own transaction at the first statement."""
        if (lock is not None or row_by_row) and not connection.in_transaction:
            cursor.execute("BEGIN IMMEDIATE")

    def lock_table(self, cursor: Any, identity: TableIdentity) -> None:
        """The lock is the file's: :meth:`begin` takes it."""

    def create_index_sql(
        self, identity: TableIdentity, column: Column, shape: TableShape | None = None
    ) -> str:
        """SQLite puts the schema on the index name, never on the table (``ON main.t`` is a syntax error)."""
        index = self.index_name(identity, column.name)
        return f"CREATE INDEX IF NOT EXISTS {identity.schema}.{index} ON {identity.name} ({column.name})"

    def describe(self, cursor: Any, identity: TableIdentity) -> TableShape | None:
        schema, name = identity.schema, identity.name
        cursor.execute(f"SELECT name, pk FROM pragma_table_info(?, '{schema}')", (name,))
        found = cursor.fetchall()
        if not found:
            return None
        primary = tuple(
            str(column).lower() for column, position in sorted(found, key=lambda c: c[1]) if position
        )
        unique, indexes = ({primary} if primary else set()), set()
        cursor.execute(f"SELECT name, \"unique\", partial FROM pragma_index_list(?, '{schema}')", (name,))
        for index, is_unique, partial in cursor.fetchall():
            cursor.execute(f"SELECT name FROM pragma_index_info(?, '{schema}') ORDER BY seqno", (index,))
            found_columns = [column for (column,) in cursor.fetchall()]
            if not found_columns or None in found_columns:  # an expression index
                continue
            columns = tuple(str(column).lower() for column in found_columns)
            indexes.add(columns)
            if is_unique and not partial:
                unique.add(columns)
        return TableShape(
            frozenset(str(column).lower() for column, _ in found), frozenset(unique), frozenset(indexes)
        )

    def is_retryable(self, error: BaseException) -> bool:
        if super().is_retryable(error):
            return True
        return type(error).__name__ == "OperationalError" and any(text in str(error) for text in _BUSY)
