"""The SQL sink: rows upserted on their key through any common.sql hook (SQLite, PostgreSQL, ...)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from contextlib import closing
from operator import itemgetter
from typing import Any

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.endpoints import Column, Record, Reject, raw_json
from airflow_provider_patsnap.sinks.base import REJECT_COLUMNS, Sink, reject_row, utc_now
from airflow_provider_patsnap.sinks.names import check_table_name, rejects_table_name
from airflow_provider_patsnap.sinks.sql_tables import (
    TableKeeper,
    first_line,
    is_data_error,
    is_retryable,
)

log = logging.getLogger(__name__)

KEY = "record_key"
REJECT_KEY = "reject_key"


class SqlSink(Sink):
    """Upserts rows into ``table`` through the common.sql hook of ``conn_id``, on one connection.

    Before the first call to PatSnap the table is created (``PRIMARY KEY (record_key)``) or, if it
    exists, checked for every column and a unique key on ``record_key``. Each batch is one transaction:
    rows de-duplicated and sorted by key (so concurrent upserts of overlapping patents lock rows in the
    same order and cannot deadlock), upserted, its rejects added to ``<table>_rejects`` (created and
    checked with the table), committed. A
    deadlock or serialization failure repeats the write of the same rows, never the fetch. A value the
    database refuses rejects that row alone.
    """

    rejects_location = ""

    def __init__(
        self,
        conn_id: str,
        table: str,
        columns: Sequence[Column],
        *,
        endpoint: str,
        write_attempts: int = 6,
    ) -> None:
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        self.table = check_table_name(table)
        self.rejects_table = rejects_table_name(table)
        self.columns = tuple(columns)
        self.endpoint = endpoint
        self.write_attempts = write_attempts
        self.write_retries = 0
        hook = BaseHook.get_connection(conn_id).get_hook()
        if not isinstance(hook, DbApiHook):
            raise TypeError(
                f"connection {conn_id!r} gives a {type(hook).__name__}, not a common.sql DbApiHook: "
                "sql_conn_id must name a database connection (sqlite, postgres, ...)"
            )
        self.hook = hook
        self.location = f"{conn_id}:{table}"
        self.rejects_location = f"{conn_id}:{self.rejects_table}"
        self._names = [column.name for column in self.columns]
        self._values = itemgetter(*self._names)
        self._upsert_sql = self._replace_sql(self.table, self._names, KEY)
        self._reject_names = [column.name for column in REJECT_COLUMNS]
        self._reject_sql = self._replace_sql(self.rejects_table, self._reject_names, REJECT_KEY)
        # PostgreSQL through psycopg 3: COPY into a temporary table, then one upsert of the batch.
        self._bulk = hook.dialect_name == "postgresql"
        self._tables = TableKeeper(hook)
        self._connection: Any = hook.get_conn()
        try:
            self._tables.ensure(self._connection, self.table, self.columns, KEY)
            self._tables.ensure(self._connection, self.rejects_table, REJECT_COLUMNS, REJECT_KEY)
        except BaseException:
            self.close(ok=False)
            raise

    def _replace_sql(self, table: str, names: list[str], key: str) -> str:
        return str(self.hook.dialect.generate_replace_sql(table, names, names, replace_index=[key]))

    def write_batch(self, rows: list[Record], rejects: Sequence[Reject] = ()) -> list[Reject]:
        # The last row of a key wins, as a second upsert of it would; sorted, locks come in one order.
        unique = sorted({row[KEY]: row for row in rows}.values(), key=itemgetter(KEY))
        attempt = 1
        while True:
            try:
                refused = self._write(unique, rejects)
                self._connection.commit()
                return [*rejects, *refused]
            except Exception as error:
                self._connection.rollback()
                if not is_retryable(error) or attempt == self.write_attempts:
                    raise
                self.write_retries += 1
                pause = min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
                log.warning(
                    "Writing %d rows to %s lost a race (%s); writing them again in %.2f s (attempt %d of %d)",
                    len(unique),
                    self.table,
                    first_line(error),
                    pause,
                    attempt + 1,
                    self.write_attempts,
                )
            time.sleep(pause)
            attempt += 1

    def _write(self, rows: list[Record], rejects: Sequence[Reject]) -> list[Reject]:
        refused: list[Reject] = []
        with closing(self._connection.cursor()) as cursor:
            if rows:
                try:
                    if self._bulk and hasattr(cursor, "copy"):
                        self._copy_upsert(cursor, rows)
                    else:
                        cursor.executemany(self._upsert_sql, [self._values(row) for row in rows])
                except Exception as error:
                    if not is_data_error(error):
                        raise
                    self._connection.rollback()
                    refused = self._write_one_by_one(cursor, rows)
            if rejects or refused:
                self._write_rejects(cursor, [*rejects, *refused])
        return refused

    def _copy_upsert(self, cursor: Any, rows: list[Record]) -> None:
        names = ", ".join(self._names)
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS patsnap_stage (LIKE {self.table} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY patsnap_stage ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(self._values(row))
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in self._names if name != KEY)
        cursor.execute(
            f"INSERT INTO {self.table} ({names}) SELECT {names} FROM patsnap_stage ORDER BY {KEY} "
            f"ON CONFLICT ({KEY}) DO UPDATE SET {updates}"
        )

    def _write_one_by_one(self, cursor: Any, rows: list[Record]) -> list[Reject]:
        """Find the rows the database refuses, each in a savepoint so the others still land."""
        if getattr(self._connection, "in_transaction", True) is False:
            cursor.execute("BEGIN")  # sqlite3 would otherwise commit at the outermost RELEASE
        refused = []
        for row in rows:
            cursor.execute("SAVEPOINT patsnap_row")
            try:
                cursor.execute(self._upsert_sql, self._values(row))
            except Exception as error:
                if not is_data_error(error):
                    raise
                cursor.execute("ROLLBACK TO SAVEPOINT patsnap_row")
                reason = f"{self.table} refused the row: {first_line(error)}"
                refused.append(Reject(self.endpoint, row["pn"], row["patent_id"], reason, raw_json(row)))
            cursor.execute("RELEASE SAVEPOINT patsnap_row")
        return refused

    def _write_rejects(self, cursor: Any, rejects: list[Reject]) -> None:
        rejected_at = utc_now()
        by_key = {row[REJECT_KEY]: row for row in (reject_row(reject, rejected_at) for reject in rejects)}
        values = [tuple(row[name] for name in self._reject_names) for _, row in sorted(by_key.items())]
        cursor.executemany(self._reject_sql, values)

    def close(self, ok: bool) -> None:
        if self._connection is not None:
            if not ok:
                self._connection.rollback()
            self._connection.close()
            self._connection = None
        self._tables.dispose()
