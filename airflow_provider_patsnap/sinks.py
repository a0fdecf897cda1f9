"""Where rows go: back to XCom, into a SQL table, or into a newline-delimited JSON file.

A sink is used as a context manager: :meth:`Sink.write_batch` once per batch as results arrive, and
leaving the ``with`` block commits (a clean exit) or discards (an exception) what the sink holds. Sinks
know nothing about PatSnap endpoints beyond the columns of the rows they are given.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from airflow_provider_patsnap._compat import BaseHook, ObjectStoragePath
from airflow_provider_patsnap.endpoints import Column, Record
from airflow_provider_patsnap.exceptions import PatsnapInputError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class RowLimitExceededError(PatsnapInputError):
    """More rows than XCom should carry: the rows belong in a table or a file."""


def check_table_name(table: str) -> str:
    """Return ``table`` if it is ``name`` or ``schema.name`` of plain SQL identifiers, else raise."""
    parts = table.split(".") if isinstance(table, str) else [repr(table)]
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise ValueError(
            f"table {table!r} is not a safe SQL identifier: use letters, digits and underscores "
            "(name or schema.name, each at most 63 characters, not starting with a digit)"
        )
    return table


class Sink:
    """Base of all sinks: a context manager that takes rows batch by batch."""

    location: str = "XCom"

    def __enter__(self) -> Sink:
        return self

    def write_batch(self, rows: list[Record]) -> None:
        raise NotImplementedError

    def close(self, ok: bool) -> None:
        """Finish: publish what was written when ``ok``, discard what can be discarded otherwise."""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(ok=exc_type is None)


class XComSink(Sink):
    """Keeps rows in memory to be returned to XCom; refuses to hold more than ``row_limit``."""

    def __init__(self, row_limit: int) -> None:
        self.row_limit = row_limit
        self.rows: list[Record] = []

    def write_batch(self, rows: list[Record]) -> None:
        if len(self.rows) + len(rows) > self.row_limit:
            raise RowLimitExceededError(
                f"more than xcom_row_limit={self.row_limit} rows: XCom is for small results. Land the rows "
                "in a warehouse with sql_conn_id (and table), or in files with output_path, "
                "or raise xcom_row_limit"
            )
        self.rows.extend(rows)


class SqlSink(Sink):
    """Upserts rows into ``table`` through the common.sql hook of ``conn_id`` (SQLite, Postgres, ...).

    The table is created if missing with ``PRIMARY KEY (record_key)``; each batch is written with
    ``insert_rows(replace=True, replace_index=["record_key"])`` and committed, so a rerun replaces rows
    instead of duplicating them; rows never accumulate beyond the batch being written.
    """

    def __init__(self, conn_id: str, table: str, columns: Sequence[Column], commit_every: int = 1000) -> None:
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        self.table = check_table_name(table)
        self.columns = tuple(columns)
        self.commit_every = commit_every
        hook = BaseHook.get_connection(conn_id).get_hook()
        if not isinstance(hook, DbApiHook):
            raise TypeError(
                f"connection {conn_id!r} gives a {type(hook).__name__}, not a common.sql DbApiHook: "
                "sql_conn_id must name a database connection (sqlite, postgres, ...)"
            )
        self.hook = hook
        self.location = f"{conn_id}:{table}"
        self.hook.run(self.create_table_sql())

    def create_table_sql(self) -> str:
        body = ", ".join(f"{column.name} {column.sql_type}" for column in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.table} ({body}, PRIMARY KEY (record_key))"

    def write_batch(self, rows: list[Record]) -> None:
        if not rows:
            return
        names = [column.name for column in self.columns]
        self.hook.insert_rows(
            self.table,
            [tuple(row[name] for name in names) for row in rows],
            target_fields=names,
            commit_every=self.commit_every,
            replace=True,
            replace_index=["record_key"],
            executemany=True,
        )


class ObjectStorageSink(Sink):
    """Writes newline-delimited JSON (UTF-8) to ``path`` through a temporary file moved into place.

    A rerun replaces the file rather than appending to it; a failed run leaves the previous file alone.
    """

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path
        self.location = str(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        self._file: Any = self._temp.open("w", encoding="utf-8")

    def write_batch(self, rows: list[Record]) -> None:
        self._file.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)

    def close(self, ok: bool) -> None:
        self._file.close()
        if ok:
            self._temp.rename(self.path)
        else:
            self._temp.unlink(missing_ok=True)


def output_file(output_path: str, task_id: str, run_id: str, map_index: int = -1) -> ObjectStoragePath:
    """The file for a run: ``output_path`` itself, or ``<task_id>/<run_id>.jsonl`` under a directory.

    A path ending in ``/`` or naming an existing directory is a directory. A mapped task instance adds
    ``_<map_index>`` to the file name.
    """
    path = ObjectStoragePath(output_path)
    if not (output_path.endswith("/") or path.is_dir()):
        # Mapped shards given one file name would overwrite each other: each gets its own file.
        return path if map_index < 0 else path.parent / f"{path.stem}_{map_index}{path.suffix}"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
    if map_index >= 0:
        name = f"{name}_{map_index}"
    return path / task_id / f"{name}.jsonl"
