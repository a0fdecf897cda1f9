"""Tables the SQL sink writes to: created safely by shards starting together, checked before any paid call.

Every statement comes from the connection's :class:`~airflow_provider_patsnap.sinks.dialects.SqlDialect`
(the ``CREATE TABLE`` and ``CREATE INDEX`` of its database, and :meth:`SqlDialect.describe`, which reads
the catalog without SQLAlchemy); tables are named by their resolved
:class:`~airflow_provider_patsnap.sinks.dialects.TableIdentity`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_patsnap.endpoints import Column
from airflow_provider_patsnap.exceptions import TableMismatchError

if TYPE_CHECKING:
    from airflow_provider_patsnap.sinks.dialects import SqlDialect, TableIdentity, TableShape


CREATE_ATTEMPTS = 5  # a CREATE TABLE that keeps losing a race this often is not a race


class TableKeeper:
    """Creates a missing table, or checks an existing one, on one connection of ``dialect``'s database."""

    def __init__(self, dialect: SqlDialect, connection: Any) -> None:
        self.dialect = dialect
        self.connection = connection

    def describe(self, identity: TableIdentity) -> TableShape | None:
        """The table's shape (None: it does not exist), read in a transaction of its own."""
        try:
            with self.dialect.cursor(self.connection) as cursor:
                shape = self.dialect.describe(cursor, identity)
            self.dialect.commit(self.connection)
        except BaseException:
            self.dialect.rollback(self.connection)
            raise
        return shape

    def _run(self, sql: str) -> None:
        """A ``CREATE`` in a write's turn (DuckDB's writers of one process take turns)."""
        with self.dialect.cursor(self.connection) as cursor:
            self.dialect.begin(self.connection, cursor, None)
            cursor.execute(sql)
        self.dialect.commit(self.connection)

    def ensure(self, identity: TableIdentity, columns: Sequence[Column], key: str) -> None:
        """Create the table if missing; a shard that loses the creation race uses the winner's table."""
        shape = self.describe(identity)
        attempt = 1
        while shape is None:
            try:
                self._run(self.dialect.create_table_sql(identity, columns, key))
            except Exception as error:
                # Two CREATE TABLE IF NOT EXISTS at once can both pass the check and one then fails
                # (PostgreSQL on its catalog's pg_type once the other committed): benign if the table is
                # there now. DuckDB can refuse the loser ("write-write conflict") before the winner
                # committed: a race lost, the statement is run again.
                self.dialect.rollback(self.connection)
                lost_race = self.dialect.is_retryable(error) and attempt < CREATE_ATTEMPTS
                if self.describe(identity) is None and not lost_race:
                    raise
                attempt += 1
            shape = self.describe(identity)
        self.check(identity, shape, columns, key)

    def ensure_index(self, identity: TableIdentity, column: Column) -> None:
        """An index on ``column``, so a batch finds its patents' rows without reading the whole table."""
        shape = self.describe(identity)
        if shape is not None and (column.name,) in shape.indexes:
            return
        try:
            self._run(self.dialect.create_index_sql(identity, column, shape))
        except Exception:
            # Shards starting together race on the catalog as for CREATE TABLE; MySQL has no CREATE INDEX
            # IF NOT EXISTS. Either way, fine if the index is there now.
            self.dialect.rollback(self.connection)
            shape = self.describe(identity)
            if shape is None or (column.name,) not in shape.indexes:
                raise

    def check(
        self, identity: TableIdentity, shape: TableShape | None, columns: Sequence[Column], key: str
    ) -> None:
        """Raise :class:`TableMismatchError` saying what to add if the table cannot take the rows."""
        table = identity.qualified
        present = shape.columns if shape is not None else frozenset()
        lacking = [column for column in columns if column.name.lower() not in present]
        problems = []
        if lacking:
            adds = "; ".join(f"ALTER TABLE {table} ADD COLUMN {c.name} {c.sql_type}" for c in lacking)
            problems.append(f"it lacks column(s) {', '.join(c.name for c in lacking)}: add them ({adds})")
        if shape is None or (key.lower(),) not in shape.unique_keys:
            problems.append(
                f"it has no primary key or unique index on {key}, which the upsert needs to replace rows "
                f"instead of duplicating them: add one (CREATE UNIQUE INDEX {identity.name}_{key} ON "
                f"{table} ({key})), after removing rows with a duplicate {key}"
            )
        if problems:
            raise TableMismatchError(
                f"table {table} exists but cannot take these rows: {'; '.join(problems)}"
            )
