"""Tables the SQL sink writes to: created safely by shards starting together, checked before any paid call.

Also how database errors are told apart: a deadlock or serialization failure is worth repeating; a value
the database refuses (too long, out of range) belongs to one row, not to the batch. And how a statement
names a list of values (:class:`ValueList`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from airflow_provider_patsnap.endpoints import Column
from airflow_provider_patsnap.exceptions import TableMismatchError

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected
_DATA_ERROR_NAMES = frozenset({"DataError", "IntegrityError"})  # DB-API classes, whatever the driver


class ValueList(NamedTuple):
    """``column IN (...)``, in the form the database parses fastest.

    PostgreSQL takes the values as one array parameter (``= ANY(%s)``): psycopg parses a query with
    thousands of placeholders in milliseconds, every time. Elsewhere, ``IN`` with one placeholder a
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


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a psycopg 3 (``sqlstate``) or psycopg2 (``pgcode``) error, else ``None``."""
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)


def is_retryable(error: BaseException) -> bool:
    """A write that lost a race (deadlock, serialization failure, a busy SQLite file): repeat it."""
    if sqlstate(error) in RETRYABLE_SQLSTATES:
        return True
    return type(error).__name__ == "OperationalError" and "database is locked" in str(error)


def is_data_error(error: BaseException) -> bool:
    """A value the database (or its driver) refused: the row is at fault, not the connection."""
    if isinstance(error, OverflowError | UnicodeError):
        return True
    if any(cls.__name__ in _DATA_ERROR_NAMES for cls in type(error).__mro__):
        return True
    return (sqlstate(error) or "")[:2] in ("22", "23")


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


class TableKeeper:
    """Creates a missing table, or checks an existing one, through a SQLAlchemy inspector of the hook."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook
        self._engine: Any = None

    def _inspector(self) -> Any:
        from sqlalchemy import inspect

        if self._engine is None:
            self._engine = self.hook.get_sqlalchemy_engine()
        return inspect(self._engine)  # a fresh one each time: inspectors cache what they saw

    def exists(self, table: str) -> bool:
        schema, _, name = table.rpartition(".")
        return bool(self._inspector().has_table(name, schema=schema or None))

    def ensure(self, connection: Any, table: str, columns: Sequence[Column], key: str) -> None:
        """Create ``table`` if missing; a shard that loses the creation race uses the winner's table."""
        if not self.exists(table):
            body = ", ".join(f"{column.name} {column.sql_type}" for column in columns)
            cursor = connection.cursor()
            try:
                cursor.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body}, PRIMARY KEY ({key}))")
                connection.commit()
            except Exception:
                # Two CREATE TABLE IF NOT EXISTS at once can both pass the check and one then fails on
                # PostgreSQL's catalog (pg_type): benign if the table is there now.
                connection.rollback()
                if not self.exists(table):
                    raise
            finally:
                cursor.close()
        self.check(table, columns, key)

    def ensure_index(self, connection: Any, table: str, column: str) -> None:
        """An index on ``column``, so a batch finds its patents' rows without reading the whole table."""
        schema, _, name = table.rpartition(".")
        cursor = connection.cursor()
        try:
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {name}_{column} ON {table} ({column})")
            connection.commit()
        except Exception:
            # Shards starting together can race on the catalog as for CREATE TABLE: fine if it is there.
            connection.rollback()
            indexed = self._inspector().get_indexes(name, schema=schema or None)
            if not any(index["column_names"] == [column] for index in indexed):
                raise
        finally:
            cursor.close()

    def check(self, table: str, columns: Sequence[Column], key: str) -> None:
        """Raise :class:`TableMismatchError` saying what to add if ``table`` cannot take the rows."""
        schema, _, name = table.rpartition(".")
        inspector = self._inspector()
        present = {column["name"].lower() for column in inspector.get_columns(name, schema=schema or None)}
        lacking = [column for column in columns if column.name.lower() not in present]
        problems = []
        if lacking:
            adds = "; ".join(f"ALTER TABLE {table} ADD COLUMN {c.name} {c.sql_type}" for c in lacking)
            problems.append(f"it lacks column(s) {', '.join(c.name for c in lacking)}: add them ({adds})")
        if not self._has_unique_key(inspector, name, schema or None, key):
            problems.append(
                f"it has no primary key or unique index on {key}, which the upsert needs to replace rows "
                f"instead of duplicating them: add one (CREATE UNIQUE INDEX {name}_{key} ON {table} "
                f"({key})), after removing rows with a duplicate {key}"
            )
        if problems:
            raise TableMismatchError(
                f"table {table} exists but cannot take these rows: {'; '.join(problems)}"
            )

    @staticmethod
    def _has_unique_key(inspector: Any, name: str, schema: str | None, key: str) -> bool:
        wanted = [key.lower()]
        primary = inspector.get_pk_constraint(name, schema=schema) or {}
        candidates = [primary.get("constrained_columns") or []]
        candidates += [u["column_names"] for u in inspector.get_unique_constraints(name, schema=schema)]
        candidates += [
            index["column_names"]
            for index in inspector.get_indexes(name, schema=schema)
            if index.get("unique") and not _is_partial(index)
        ]
        return any([str(column).lower() for column in columns] == wanted for columns in candidates)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _is_partial(index: dict[str, Any]) -> bool:
    """A unique index with a WHERE clause does not make ON CONFLICT work for every row."""
    return any(
        name.endswith("_where") and value is not None
        for name, value in (index.get("dialect_options") or {}).items()
    )
