"""PostgreSQL's bulk path (psycopg 3): rows copied into a temporary stage table, then one sorted upsert.

``COPY`` moves a write's rows in one stream; the ``INSERT ... SELECT ... ORDER BY key ON CONFLICT``
that follows takes row locks in key order, like the portable path's sorted ``executemany``, so two
writers of overlapping rows cannot deadlock. The stage table lives as long as the connection (it is
created once, when the sink opens) and empties itself at every commit, or with a rollback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import closing
from typing import Any


def can_copy(connection: Any) -> bool:
    """psycopg 3 connections can; psycopg2's cannot (they use the portable path)."""
    with closing(connection.cursor()) as cursor:
        return hasattr(cursor, "copy")


class CopyUpsert:
    """Upserts value tuples (in ``names`` order) into ``table`` on ``key`` through ``stage``."""

    def __init__(self, connection: Any, table: str, names: Sequence[str], key: str, stage: str) -> None:
        columns = ", ".join(names)
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names if name != key)
        self._copy_sql = f"COPY {stage} ({columns}) FROM STDIN"
        self._upsert_sql = (
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} ORDER BY {key} "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )
        with closing(connection.cursor()) as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS"
            )
        connection.commit()

    def __call__(self, cursor: Any, values: Iterable[Sequence[Any]]) -> None:
        with cursor.copy(self._copy_sql) as copy:
            write_row = copy.write_row
            for row in values:
                write_row(row)
        cursor.execute(self._upsert_sql)
