"""How a SQL destination is opened: its connection's hook, the database's dialect, and the table's identity.

The order matters and is the same for a run and for an estimate: the dialect is chosen from the hook
before anything connects (a database the sink does not support is refused there, before any paid
call: :class:`~airflow_provider_patsnap.exceptions.UnsupportedDatabaseError`), then the connection is
opened and prepared, and the table name is resolved once to the identity the database uses. Everything
after that is keyed on the identity, never on the text the user wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.sinks.base import NOTHING_FRESH, FreshPatents
from airflow_provider_patsnap.sinks.dialects import SqlDialect, TableIdentity, dialect_for
from airflow_provider_patsnap.sinks.names import check_table_name
from airflow_provider_patsnap.sinks.state import STATE_SUFFIX

if TYPE_CHECKING:
    from airflow_provider_patsnap.ids import PatentIds
    from airflow_provider_patsnap.sinks.state import FetchState


class SqlDatabase:
    """One connection of ``conn_id`` (a common.sql hook's), its prepared dialect, and ``table`` resolved."""

    def __init__(self, conn_id: str, table: str) -> None:
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        check_table_name(table)
        hook = BaseHook.get_connection(conn_id).get_hook()
        if not isinstance(hook, DbApiHook):
            raise TypeError(
                f"connection {conn_id!r} gives a {type(hook).__name__}, not a common.sql DbApiHook: "
                "sql_conn_id must name a database connection (sqlite, postgres, mysql, duckdb)"
            )
        self.conn_id = conn_id
        self.dialect: SqlDialect = dialect_for(hook, conn_id)  # refuses before connecting
        self.connection: Any = hook.get_conn()
        try:
            self.dialect.prepare(self.connection)
            with self.dialect.cursor(self.connection) as cursor:
                self.identity: TableIdentity = self.dialect.resolve_table(cursor, table)
            self.dialect.commit(self.connection)
        except BaseException:
            self.close(ok=False)
            raise

    def read(self, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of one query, in a transaction of its own."""
        with self.dialect.cursor(self.connection) as cursor:
            cursor.execute(sql, parameters)
            rows = [tuple(row) for row in cursor.fetchall()]
        self.dialect.commit(self.connection)
        return rows

    def close(self, ok: bool) -> None:
        """Close the connection; undo what is not committed unless ``ok``."""
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            if not ok:
                self.dialect.rollback(connection)
        finally:
            connection.close()


def fresh_in(
    conn_id: str, table: str, state: FetchState, ids: PatentIds, *, since: datetime, now: datetime
) -> FreshPatents:
    """:meth:`FetchState.fresh` for ``table`` of ``conn_id`` on a short-lived connection, creating
    nothing (``estimate_only``): a state table that does not exist yet has nothing fresh."""
    database = SqlDatabase(conn_id, table)
    try:
        state_table = database.identity.with_suffix(STATE_SUFFIX)
        with database.dialect.cursor(database.connection) as cursor:
            exists = database.dialect.describe(cursor, state_table) is not None
        database.dialect.commit(database.connection)
        if not exists:
            return NOTHING_FRESH
        values = database.dialect.value_list()
        return state.fresh(database.read, state_table.qualified, values, ids, since=since, now=now)
    finally:
        database.close(ok=True)
