"""Where rows go: back to XCom, into a SQL table, or into a newline-delimited JSON file.

Each sink also keeps the batch's rejects (vendor data that could not become a row) where users can find
them: a ``<table>_rejects`` table, a ``<name>.rejects.jsonl`` file, or the task log for XCom.

The names below are imported from their modules when first used, so a DAG file that imports the
operators does not pay for the SQL and file sinks it only needs at run time.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_patsnap.sinks.base import (
        REJECT_COLUMNS,
        WRITE_MODES,
        FetchedBatch,
        FetchedPatent,
        RowLimitExceededError,
        Sink,
        WriteCounts,
        WriteMode,
        XComSink,
    )
    from airflow_provider_patsnap.sinks.files import ObjectStorageSink
    from airflow_provider_patsnap.sinks.names import (
        InvalidDestinationError,
        check_table_name,
        output_file,
        rejects_table_name,
    )
    from airflow_provider_patsnap.sinks.sql import SqlSink

_HOMES = {
    "REJECT_COLUMNS": "base",
    "RowLimitExceededError": "base",
    "Sink": "base",
    "XComSink": "base",
    "WRITE_MODES": "base",
    "FetchedBatch": "base",
    "FetchedPatent": "base",
    "WriteCounts": "base",
    "WriteMode": "base",
    "ObjectStorageSink": "files",
    "InvalidDestinationError": "names",
    "check_table_name": "names",
    "output_file": "names",
    "rejects_table_name": "names",
    "SqlSink": "sql",
}

__all__ = [
    "REJECT_COLUMNS",
    "WRITE_MODES",
    "FetchedBatch",
    "FetchedPatent",
    "InvalidDestinationError",
    "ObjectStorageSink",
    "RowLimitExceededError",
    "Sink",
    "SqlSink",
    "WriteCounts",
    "WriteMode",
    "XComSink",
    "check_table_name",
    "output_file",
    "rejects_table_name",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
