"""The SQL destination's databases: one :class:`SqlDialect` each for SQLite, PostgreSQL, MySQL/MariaDB and
DuckDB, chosen from the connection's hook before any call to PatSnap; any other database is refused
(:class:`UnsupportedDatabaseError`) instead of being sent SQL it may not speak.

A dialect owns every per-database decision of the SQL sink: how a table name resolves to the identity
the database uses (:meth:`SqlDialect.resolve_table`: schema and case), the upsert, the lock that keeps
``sync`` and ``history`` writers of one table apart, how a list of values is bound, whether savepoints
exist, column types and indexes, the inspection of an existing table, and which errors are a refused
value (one row's fault) or a lost race (write again).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_patsnap.exceptions import TableLockTimeoutError, UnsupportedDatabaseError
from airflow_provider_patsnap.sinks.dialects.base import (
    SqlDialect,
    TableIdentity,
    TableShape,
    Upsert,
    ValueList,
)
from airflow_provider_patsnap.sinks.dialects.duckdb import DuckDBDialect
from airflow_provider_patsnap.sinks.dialects.mysql import MySqlDialect
from airflow_provider_patsnap.sinks.dialects.postgresql import PostgresDialect
from airflow_provider_patsnap.sinks.dialects.sqlite import SqliteDialect

__all__ = [
    "DIALECTS",
    "RECIPES",
    "DuckDBDialect",
    "MySqlDialect",
    "PostgresDialect",
    "SqlDialect",
    "SqliteDialect",
    "TableIdentity",
    "TableLockTimeoutError",
    "TableShape",
    "UnsupportedDatabaseError",
    "Upsert",
    "ValueList",
    "database_name",
    "dialect_for",
]

#: A hook's ``dialect_name`` (or, when that says nothing, its ``conn_type``) → the dialect.
DIALECTS: dict[str, type[SqlDialect]] = {
    "postgresql": PostgresDialect,
    "postgres": PostgresDialect,
    "sqlite": SqliteDialect,
    "mysql": MySqlDialect,
    "mariadb": MySqlDialect,
    "duckdb": DuckDBDialect,
}
#: Where users of other warehouses are sent: the recipes to load the rows from files.
RECIPES = "docs/destinations.md#cloud-warehouses-parquet-then-their-own-loaders (Snowflake, BigQuery, Redshift, Databricks)"


def database_name(hook: Any) -> str:
    """What database a hook talks to: common.sql's ``dialect_name`` (from the SQLAlchemy URL scheme or the
    connection's ``dialect`` extra), else the hook's ``conn_type``; lower case."""
    try:
        name = str(hook.dialect_name or "")
    except Exception:  # a hook whose URI cannot be built without more settings
        name = ""
    if name in ("", "default"):
        name = str(getattr(hook, "conn_type", "") or "")
    name = name.lower()
    if name in ("postgresql", "postgres") and _is_redshift(hook):
        return "redshift"  # the postgres hook with {"redshift": true}: no ON CONFLICT, no advisory locks
    return name


def _is_redshift(hook: Any) -> bool:
    try:
        return bool((hook.connection_extra or {}).get("redshift"))
    except Exception:
        return False


def dialect_for(hook: Any, conn_id: str = "") -> SqlDialect:
    """A fresh dialect for the database of ``hook`` (a common.sql ``DbApiHook``), or
    :class:`UnsupportedDatabaseError` naming the database. Asks the database nothing: call it before the
    first paid call."""
    name = database_name(hook)
    dialect = DIALECTS.get(name)
    if dialect is None:
        source = f"connection {conn_id!r}" if conn_id else "the connection"
        raise UnsupportedDatabaseError(
            f"{source} is a {name or 'unknown'} database ({type(hook).__name__}): the SQL destination writes "
            "to SQLite, PostgreSQL, MySQL/MariaDB and DuckDB only, whose SQL it knows and tests, and "
            f"sends no guessed SQL elsewhere. Land the rows in files (output_path) and load them with "
            f"the database's own tools; see {RECIPES}"
        )
    return dialect()
