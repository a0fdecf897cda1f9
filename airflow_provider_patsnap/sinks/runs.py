"""The run record: one row per data task try, beside the rows it landed, saying what the try cost.

A SQL destination keeps them in ``patsnap_runs`` in the table's schema (one table for every PatSnap table
there, so "what did enrichment cost per DAG per month" is one query); a file destination writes the same
record as ``<name>.run.json`` beside its file (:func:`manifest_file`). The SQL record is upserted in the transaction of every
write, so it never claims a row that did not land, and finished (outcome, end time) when the try ends;
a try that fails records its failure as a best effort that never hides the error.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, NamedTuple

from airflow_provider_patsnap.endpoints import Column

RUNS_TABLE = "patsnap_runs"
RUN_KEY = "run_key"
RUN_COLUMNS = (
    Column(
        RUN_KEY, "VARCHAR(40)", "sha1 of dag_id, run_id, task_id, map_index and try_number; the primary key"
    ),
    Column("dag_id", "VARCHAR(250)", "the DAG"),
    Column("run_id", "VARCHAR(250)", "the DAG run"),
    Column("task_id", "VARCHAR(250)", "the task"),
    Column("map_index", "INTEGER", "the mapped task's index, -1 when not mapped"),
    Column("try_number", "INTEGER", "the try of the task instance"),
    Column("endpoint", "VARCHAR(8)", "PatSnap API code, P026 for example"),
    Column("destination", "TEXT", "the table or file the rows went to"),
    Column("write_mode", "VARCHAR(16)", "sync, merge or history; NULL for a file"),
    Column("started_at", "VARCHAR(32)", "UTC time the try started, ISO 8601"),
    Column("ended_at", "VARCHAR(32)", "UTC time the try ended, ISO 8601; NULL while it runs"),
    Column("outcome", "VARCHAR(16)", "running, success or failed"),
    Column("error_class", "VARCHAR(100)", "the exception a failed try ended with"),
    Column("requested", "BIGINT", "ids the task was given (after de-duplication)"),
    Column("skipped_fresh", "BIGINT", "ids skipped as fetched recently (refresh_after)"),
    Column("found", "BIGINT", "patents PatSnap returned data for"),
    Column("rows_written", "BIGINT", "rows landed"),
    Column("rows_removed", "BIGINT", "sync: rows of fetched patents PatSnap no longer returns"),
    Column("rejects", "BIGINT", "vendor records kept as rejects"),
    Column("billed_units", "BIGINT", "patents in the answers received: what PatSnap bills"),
    Column("billed_units_unknown", "BIGINT", "patents of calls whose answer was lost after sending"),
    Column("calls", "BIGINT", "HTTP calls to PatSnap, retries included"),
    Column("retries", "BIGINT", "calls repeated after a transient failure"),
)
RUN_NAMES = tuple(column.name for column in RUN_COLUMNS)


class TaskTry(NamedTuple):
    """Which task try a record is about (from the task's context; ``manual`` outside a DAG run)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @classmethod
    def of(cls, context: Any, dag_id: str, task_id: str) -> TaskTry:
        ti = context.get("ti")
        map_index = getattr(ti, "map_index", -1) if ti is not None else -1
        try_number = getattr(ti, "try_number", 1) if ti is not None else 1
        return cls(
            dag_id,
            str(context.get("run_id") or "manual"),
            task_id,
            int(map_index if map_index is not None else -1),
            int(try_number or 1),
        )

    @property
    def key(self) -> str:
        text = "\x1f".join(str(part) for part in self)
        return hashlib.sha1(text.encode("utf-8")).hexdigest()


class RunCounts(NamedTuple):
    """What a try did so far."""

    requested: int = 0
    skipped_fresh: int = 0
    found: int = 0
    rows_written: int = 0
    rows_removed: int = 0
    rejects: int = 0
    billed_units: int = 0
    billed_units_unknown: int = 0
    calls: int = 0
    retries: int = 0


class RunRecord(NamedTuple):
    """One row of ``patsnap_runs`` (or one ``<name>.run.json``)."""

    task: TaskTry
    endpoint: str
    destination: str
    write_mode: str | None
    started_at: datetime
    counts: RunCounts
    ended_at: datetime | None = None
    outcome: str = "running"
    error_class: str | None = None

    def finished(self, counts: RunCounts, ended_at: datetime, error: BaseException | None) -> RunRecord:
        return self._replace(
            counts=counts,
            ended_at=ended_at,
            outcome="failed" if error is not None else "success",
            error_class=type(error).__name__ if error is not None else None,
        )

    def row(self) -> tuple[Any, ...]:
        """The record in :data:`RUN_COLUMNS` order."""
        return (
            self.task.key,
            *self.task,
            self.endpoint,
            self.destination,
            self.write_mode,
            self.started_at.isoformat(timespec="seconds"),
            self.ended_at.isoformat(timespec="seconds") if self.ended_at else None,
            self.outcome,
            self.error_class,
            *self.counts,
        )

    def as_json(self) -> str:
        return json.dumps(dict(zip(RUN_NAMES, self.row(), strict=True)), indent=2, ensure_ascii=False)


def manifest_file(path: Any) -> Any:
    """``awards.jsonl`` → ``awards.run.json``: the run record of a file destination, beside the file."""
    return path.parent / f"{path.stem}.run.json"
