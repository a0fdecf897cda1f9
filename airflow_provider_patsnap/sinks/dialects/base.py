"""What every SQL dialect answers, and the answers most databases share.

A :class:`SqlDialect` is made for one sink (it may hold the sink's session locks), from the hook of its
connection (:func:`airflow_provider_patsnap.sinks.dialects.dialect_for`), before any call to PatSnap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, NamedTuple

from airflow_provider_patsnap.endpoints import Column
from airflow_provider_patsnap.exceptions import TableLockTimeoutError

DOCS = "docs/destinations.md"
_DATA_ERROR_CLASSES = frozenset({"DataError", "IntegrityError"})  # DB-API classes, whatever the driver
MAX_INDEX_NAME = 63  # PostgreSQL's limit (it truncates longer names); MySQL's is 64


class TableIdentity(NamedTuple):
    """A table as its database names it, resolved once when the sink opens.

    ``catalog`` is the database (PostgreSQL, DuckDB) or the SQLite file ("" for MySQL/MariaDB, whose
    schema is the database); each part is folded as the database folds unquoted names, so ``t``,
    ``public.t`` and ``T`` on PostgreSQL are one identity, and so one lock, one state table, one asset.
    """

    catalog: str
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        """The text that names the table in SQL: ``schema.name``."""
        return f"{self.schema}.{self.name}"

    @property
    def key(self) -> str:
        """Stable text for locks and comparisons: catalog, schema and name."""
        return f"{self.catalog}\x1f{self.schema}\x1f{self.name}"

    def with_suffix(self, suffix: str) -> TableIdentity:
        """The table beside it: ``<name>_state``, ``<name>_rejects``."""
        return self._replace(name=self.name + suffix)


class ValueList(NamedTuple):
    """``column IN (...)``, in the form the database parses fastest.

    PostgreSQL and DuckDB take the values as one array parameter (``= ANY(%s)``): psycopg parses a query
    with thousands of placeholders in milliseconds, every time. Elsewhere, ``IN`` with one placeholder a
    value, at most :data:`IN_LIST_CHUNK` at a time, far below any database's parameter limit (and at
    most :data:`ARRAY_CHUNK` values an array).
    """

    placeholder: str
    arrays: bool

    def chunks(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """(condition, parameters) pairs that together cover ``values``."""
        size = ARRAY_CHUNK if self.arrays else IN_LIST_CHUNK
        for start in range(0, len(values), size):
            chunk = list(values[start : start + size])
            if self.arrays:
                yield f"{column} = ANY({self.placeholder})", [chunk]
            else:
                yield f"{column} IN ({', '.join([self.placeholder] * len(chunk))})", chunk


IN_LIST_CHUNK = 500
ARRAY_CHUNK = 10_000


class TableShape(NamedTuple):
    """What an existing table has, as the sink checks it: column names and indexed column lists, all
    lower case; ``unique_keys`` are the primary key, unique constraints and unique indexes without a
    ``WHERE`` (an upsert's conflict target must be one of them); ``text_columns`` those an index can
    hold only a prefix of (MySQL's TEXT and BLOB; empty elsewhere)."""

    columns: frozenset[str]
    unique_keys: frozenset[tuple[str, ...]]
    indexes: frozenset[tuple[str, ...]]
    text_columns: frozenset[str] = frozenset()


class Upsert:
    """One table's upsert: :attr:`sql` writes one row; :meth:`many` many rows, the fastest way the
    database takes them (``executemany`` here; DuckDB overrides it)."""

    def __init__(self, sql: str, columns: Sequence[Column], key: str) -> None:
        self.sql = sql
        self.columns = tuple(columns)
        self.key = key

    def one(self, cursor: Any, values: Sequence[Any]) -> None:
        cursor.execute(self.sql, values)

    def many(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cursor.executemany(self.sql, rows)


def lock_digest(identity: TableIdentity) -> bytes:
    return hashlib.sha1(f"airflow-provider-patsnap\x1f{identity.key}".encode()).digest()


def driver_errno(error: BaseException) -> int | None:
    """A MySQL-protocol error number: ``errno`` (mysql-connector-python), else ``args[0]`` (mysqlclient,
    PyMySQL)."""
    number = getattr(error, "errno", None)
    if isinstance(number, int):
        return number
    args = getattr(error, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def on_conflict(names: Sequence[str], key: str) -> str:
    """``DO UPDATE SET name = excluded.name, ...`` for every column but the key (``DO NOTHING`` if none)."""
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != key)
    return f"DO UPDATE SET {updates}" if updates else "DO NOTHING"


class SqlDialect:
    """Every per-database decision of the SQL sink. Subclasses override what differs.

    Order of use: :meth:`prepare` once on the sink's connection, :meth:`resolve_table` for the table
    (and :meth:`TableIdentity.with_suffix` for the tables beside it), then per write :meth:`begin`,
    the statements, and :meth:`commit` or :meth:`rollback` (which also release a session lock).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # for messages: "PostgreSQL"
    default_placeholder: ClassVar[str] = "%s"
    #: A list of values binds as one array parameter (``column = ANY(%s)``) instead of an ``IN`` list.
    arrays: ClassVar[bool] = False
    #: ``SAVEPOINT`` exists, so one refused row can be undone without undoing the batch.
    savepoints: ClassVar[bool] = True
    table_options: ClassVar[str] = ""  # after CREATE TABLE's column list

    def __init__(self, placeholder: str | None = None) -> None:
        self.placeholder = placeholder or self.default_placeholder

    # ---- names --------------------------------------------------------------------------------------
    def fold(self, name: str) -> str:
        """An unquoted name as the database stores it (here: lower case, as PostgreSQL, SQLite and
        DuckDB compare them). Needs no connection: the asset URI is built from it at parse time."""
        return name.lower()

    def resolve_table(self, cursor: Any, table: str) -> TableIdentity:
        """``table`` (``name`` or ``schema.name``, checked by names.py) as the database names it."""
        raise NotImplementedError

    # ---- the session and its transactions ------------------------------------------------------------
    def prepare(self, connection: Any) -> None:
        """Session settings the sink relies on, once, right after connecting."""

    @contextmanager
    def cursor(self, connection: Any) -> Iterator[Any]:
        """A cursor in the connection's transaction, closed afterwards."""
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def begin(
        self, connection: Any, cursor: Any, lock: TableIdentity | None, row_by_row: bool = False
    ) -> None:
        """Start a write's transaction; with ``lock``, take that table's lock for ``sync`` and ``history``
        (held until :meth:`commit` or :meth:`rollback`). ``row_by_row``: savepoints will follow."""
        if lock is not None:
            self.lock_table(cursor, lock)

    def lock_table(self, cursor: Any, identity: TableIdentity) -> None:
        raise NotImplementedError

    def commit(self, connection: Any) -> None:
        connection.commit()
        self.release_locks(connection)

    def rollback(self, connection: Any) -> None:
        try:
            connection.rollback()
        finally:
            self.release_locks(connection)

    def release_locks(self, connection: Any) -> None:
        """Session locks outlive a transaction on some databases: release them (no-op elsewhere)."""

    # ---- planner statistics -------------------------------------------------------------------------
    def analyze_sql(self, identity: TableIdentity) -> str | None:
        """The statement that refreshes the planner's statistics of a table a run is filling, where the
        planner would otherwise not use the table's indexes for lists of values (sinks/sql_statistics.py);
        None where it needs none."""
        return None

    def row_estimate(self, cursor: Any, identity: TableIdentity) -> int:
        """About how many rows the table held when its statistics were last refreshed (0 if never)."""
        return 0

    # ---- tables -------------------------------------------------------------------------------------
    def column_type(self, column: Column) -> str:
        return column.sql_type

    def create_table_sql(self, identity: TableIdentity, columns: Sequence[Column], key: str) -> str:
        body = ", ".join(f"{column.name} {self.column_type(column)}" for column in columns)
        return f"CREATE TABLE IF NOT EXISTS {identity.qualified} ({body}, PRIMARY KEY ({key})){self.table_options}"

    def index_name(self, identity: TableIdentity, column: str) -> str:
        """``<table>_<column>``, shortened with a hash where the database would refuse or cut it."""
        name = f"{identity.name}_{column}"
        if len(name) <= MAX_INDEX_NAME:
            return name
        return f"{name[: MAX_INDEX_NAME - 9]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"

    def create_index_sql(
        self, identity: TableIdentity, column: Column, shape: TableShape | None = None
    ) -> str:
        """``CREATE INDEX`` on ``column`` of the table (``shape``: the table as it is, when it exists)."""
        return (
            f"CREATE INDEX IF NOT EXISTS {self.index_name(identity, column.name)} "
            f"ON {identity.qualified} ({column.name})"
        )

    def describe(self, cursor: Any, identity: TableIdentity) -> TableShape | None:
        """The table's columns and keys, or None when it does not exist (no SQLAlchemy involved)."""
        raise NotImplementedError

    # ---- rows ---------------------------------------------------------------------------------------
    def upsert(self, identity: TableIdentity, columns: Sequence[Column], key: str) -> Upsert:
        """Insert rows, or update the row with the same ``key`` in place (never delete and re-insert)."""
        names = [column.name for column in columns]
        sql = (
            f"INSERT INTO {identity.qualified} ({', '.join(names)}) "
            f"VALUES ({', '.join([self.placeholder] * len(names))}) ON CONFLICT ({key}) {on_conflict(names, key)}"
        )
        return Upsert(sql, columns, key)

    def value_list(self) -> ValueList:
        """How a statement names many values of a column (``= ANY(?)`` or ``IN (?, ...)``)."""
        return ValueList(self.placeholder, arrays=self.arrays)

    def refused(
        self, connection: Any, upsert: Upsert, rows: Sequence[Sequence[Any]]
    ) -> dict[int, BaseException]:
        """Which of ``rows`` the database refuses (index → error), each tried alone in a transaction that
        is rolled back: without savepoints, this is how a batch learns which rows to leave out before it
        is written again in one transaction. Call it outside the batch's transaction."""
        refusals: dict[int, BaseException] = {}
        for index, values in enumerate(rows):
            try:
                with self.cursor(connection) as cursor:
                    self.begin(connection, cursor, None)
                    upsert.one(cursor, values)
            except Exception as error:
                if not self.is_data_error(error):
                    self.rollback(connection)
                    raise
                refusals[index] = error
            self.rollback(connection)
        return refusals

    # ---- errors -------------------------------------------------------------------------------------
    def is_data_error(self, error: BaseException) -> bool:
        """A value the database (or its driver) refused: the row is at fault, not the batch."""
        if isinstance(error, OverflowError | UnicodeError):
            return True
        return any(cls.__name__ in _DATA_ERROR_CLASSES for cls in type(error).__mro__)

    def is_retryable(self, error: BaseException) -> bool:
        """A write that lost a race (deadlock, serialization failure, lock wait): write it again."""
        return isinstance(error, TableLockTimeoutError)
