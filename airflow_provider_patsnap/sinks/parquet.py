"""Parquet files on any object storage, typed from the table's column types, one row group per write.

pyarrow is imported when a Parquet sink opens, never when this module is (DAG files import the operators
on every parse): the ``parquet`` extra installs it, and without it the task fails before any call to
PatSnap, naming the extra.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from airflow_provider_patsnap._compat import ObjectStoragePath
from airflow_provider_patsnap.endpoints import Column, Reject, Row
from airflow_provider_patsnap.exceptions import InvalidDestinationError
from airflow_provider_patsnap.payloads import raw_json
from airflow_provider_patsnap.sinks.files import FileSink, StagedFile

#: The Arrow (and Parquet) type of each SQL type the endpoint tables use. Every column is nullable.
ARROW_TYPES = {
    "TEXT": "string",
    "VARCHAR": "string",  # VARCHAR(n): the length is the SQL table's, Parquet strings have none
    "BIGINT": "int64",  # dates are YYYYMMDD integers
    "INTEGER": "int32",
    "SMALLINT": "int16",
}
_SQL_TYPE = re.compile(r"([A-Z]+)(?:\(\d+\))?")
#: Parquet's compression: Snappy, which every warehouse loader and DuckDB read.
COMPRESSION = "snappy"
EXTRA_HINT = (
    "install the parquet extra (pip install 'airflow-provider-patsnap[parquet]', which brings pyarrow) "
    "where the task runs, or write newline-delimited JSON (an output_path ending in .jsonl)"
)


def arrow_type_name(sql_type: str) -> str:
    """``VARCHAR(40)`` → ``string``, ``BIGINT`` → ``int64``: the Arrow type of a column's SQL type."""
    match = _SQL_TYPE.fullmatch(sql_type.strip().upper())
    if match is None or match[1] not in ARROW_TYPES:
        raise ValueError(f"no Parquet type for SQL type {sql_type!r}: known are {sorted(ARROW_TYPES)}")
    return ARROW_TYPES[match[1]]


def load_pyarrow() -> tuple[Any, Any]:
    """``pyarrow`` and ``pyarrow.parquet``, or :class:`InvalidDestinationError` naming the extra."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as missing:
        raise InvalidDestinationError(
            f"a Parquet output_path needs pyarrow ({missing}): {EXTRA_HINT}"
        ) from None
    return pyarrow, pyarrow.parquet


def arrow_schema(columns: Sequence[Column]) -> Any:
    """The ``pyarrow.Schema`` of rows in ``columns`` order: each column's type (:data:`ARROW_TYPES`),
    nullable, its SQL type and description kept in the field's metadata."""
    pa, _ = load_pyarrow()
    return pa.schema(
        [
            pa.field(
                column.name,
                getattr(pa, arrow_type_name(column.sql_type))(),
                nullable=True,
                metadata={"sql_type": column.sql_type, "description": column.description},
            )
            for column in columns
        ]
    )


class ParquetSink(FileSink):
    """Writes a Parquet file to ``path`` through a temporary file moved into place on success.

    Each write is one row group, written out as it arrives: the run never holds more than one write's
    rows. A record key appears once in the file (the last row of a key in a write wins, as in a table).
    A run that fails after writing row groups keeps them, footer written, as ``<name>.partial.parquet``
    beside the path (they were paid for), never at the path. A row pyarrow cannot store in its column's type (a value the mapping let through) becomes a
    reject, with the rest of its write landing. Rejects go to ``<name>.rejects.jsonl`` beside the file.
    """

    def __init__(self, path: ObjectStoragePath, columns: Sequence[Column], endpoint: str = "") -> None:
        self._pa, parquet = load_pyarrow()  # before anything is created: a missing pyarrow leaves no trace
        self._schema = arrow_schema(columns)
        super().__init__(path, columns)
        self.endpoint = endpoint
        self.row_groups = 0
        self._rows = StagedFile(path)
        try:
            self._writer = parquet.ParquetWriter(self._rows.file, self._schema, compression=COMPRESSION)
        except BaseException:
            self._rows.close(ok=False)
            raise

    def write_rows(self, rows: list[Row]) -> list[Reject]:
        if not rows:
            return []
        # One row per record_key in the file (a patent's records are all in one write): the last of a
        # key wins, as a second upsert of it would, and a warehouse MERGE from the file matches one row.
        rows = list({row[0]: row for row in rows}.values())
        refused: list[Reject] = []
        try:
            table = self._table(rows)
        except (self._pa.ArrowException, OverflowError, TypeError, ValueError):
            table, refused = self._table_around_refusals(rows)
        if table.num_rows:
            self._writer.write_table(table, row_group_size=table.num_rows)  # one row group per write
            self.row_groups += 1
            self._rows.rows += table.num_rows
        return refused

    def _table(self, rows: Sequence[Row]) -> Any:
        pa, schema = self._pa, self._schema
        arrays = [
            pa.array(values, type=field.type)
            for values, field in zip(zip(*rows, strict=True), schema, strict=True)
        ]
        return pa.Table.from_arrays(arrays, schema=schema)

    def _table_around_refusals(self, rows: Sequence[Row]) -> tuple[Any, list[Reject]]:
        kept: list[Row] = []
        refused: list[Reject] = []
        names = [column.name for column in self.columns]
        for row in rows:
            try:
                self._table([row])
            except (self._pa.ArrowException, OverflowError, TypeError, ValueError) as error:
                reason = f"Parquet cannot store this row in the column types: {error}"
                raw = raw_json(dict(zip(names, row, strict=True)))
                refused.append(Reject(self.endpoint, row[1], row[2], reason, raw))
            else:
                kept.append(row)
        return (self._table(kept) if kept else self._schema.empty_table()), refused

    def close_rows(self, ok: bool) -> None:
        try:
            self._writer.close()  # the footer: a failed run's row groups are a whole Parquet file too
        except Exception:
            self._rows.rows = 0  # no footer, no file worth keeping
            self._rows.close(ok=False)
            if ok:
                raise
            return
        self._rows.close(ok)
