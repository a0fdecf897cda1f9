"""PostgreSQL (psycopg 3 or psycopg2): names folded to lower case, the schema from the search path, one
transaction-scoped advisory lock per table, arrays for lists of values."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow_provider_patsnap.exceptions import PatsnapInputError
from airflow_provider_patsnap.sinks.dialects.base import SqlDialect, TableIdentity, TableShape, lock_digest

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a psycopg 3 (``sqlstate``) or psycopg2 (``pgcode``) error, else ``None``."""
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)


class PostgresDialect(SqlDialect):
    name = "postgresql"
    label = "PostgreSQL"
    arrays: ClassVar[bool] = True

    def resolve_table(self, cursor: Any, table: str) -> TableIdentity:
        """An existing table where ``SELECT ... FROM table`` finds it (``to_regclass``: the search path,
        temporary tables first); a new one where ``CREATE TABLE table`` puts it (``current_schema()``)."""
        cursor.execute(
            "SELECT current_database(), current_schema(), n.nspname, c.relname "
            "FROM (SELECT to_regclass(%s) AS oid) AS found "
            "LEFT JOIN pg_catalog.pg_class AS c ON c.oid = found.oid "
            "LEFT JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace",
            (table,),
        )
        database, current, schema, name = cursor.fetchone()
        if name is not None:
            return TableIdentity(str(database), str(schema), str(name))
        written_schema, _, written_name = table.rpartition(".")
        if written_schema:
            return TableIdentity(str(database), self.fold(written_schema), self.fold(written_name))
        if current is None:
            raise PatsnapInputError(
                f"table {table!r}: the connection's search_path names no existing schema to create it in; "
                "name the schema (schema.table) or fix the search_path"
            )
        return TableIdentity(str(database), str(current), self.fold(written_name))

    def lock_table(self, cursor: Any, identity: TableIdentity) -> None:
        """One transaction-scoped advisory lock for the ``sync`` and ``history`` writes of a table (released
        by the commit or rollback), keyed on the resolved identity."""
        key = int.from_bytes(lock_digest(identity)[:8], "big", signed=True)
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (key,))

    def analyze_sql(self, identity: TableIdentity) -> str | None:
        return f"ANALYZE {identity.qualified}"

    def row_estimate(self, cursor: Any, identity: TableIdentity) -> int:
        cursor.execute(
            "SELECT reltuples FROM pg_catalog.pg_class WHERE oid = to_regclass(%s)", (identity.qualified,)
        )
        found = cursor.fetchone()
        return max(0, int(found[0])) if found is not None and found[0] is not None else 0

    def describe(self, cursor: Any, identity: TableIdentity) -> TableShape | None:
        cursor.execute("SELECT to_regclass(%s)::oid", (identity.qualified,))
        oid = cursor.fetchone()[0]
        if oid is None:
            return None
        cursor.execute(
            "SELECT attnum, attname FROM pg_catalog.pg_attribute "
            "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
            (oid,),
        )
        names = {int(number): str(name).lower() for number, name in cursor.fetchall()}
        cursor.execute(
            "SELECT indisunique, indpred IS NOT NULL, indkey::int2[] FROM pg_catalog.pg_index "
            "WHERE indrelid = %s",
            (oid,),
        )
        unique, indexes = set(), set()
        for is_unique, partial, numbers in cursor.fetchall():
            if 0 in numbers:  # an expression index: no plain column list
                continue
            columns = tuple(names[int(number)] for number in numbers)
            indexes.add(columns)
            if is_unique and not partial:
                unique.add(columns)
        return TableShape(frozenset(names.values()), frozenset(unique), frozenset(indexes))

    def is_data_error(self, error: BaseException) -> bool:
        return super().is_data_error(error) or (sqlstate(error) or "")[:2] in ("22", "23")

    def is_retryable(self, error: BaseException) -> bool:
        return super().is_retryable(error) or sqlstate(error) in RETRYABLE_SQLSTATES
