"""Where rows go: back to XCom, into a SQL table, or into a newline-delimited JSON file.

Each sink also keeps the batch's rejects (vendor data that could not become a row) where users can find
them: a ``<table>_rejects`` table, a ``<name>.rejects.jsonl`` file, or the task log for XCom.
"""

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
