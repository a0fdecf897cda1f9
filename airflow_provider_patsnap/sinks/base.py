"""The sink contract, and the XCom sink.

A sink is used as a context manager: :meth:`Sink.write_batch` once per batch as results arrive, and
leaving the ``with`` block commits (a clean exit) or discards (an exception) what the sink holds. Sinks
know nothing about PatSnap endpoints beyond the columns of the rows and the rejects they are given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, NamedTuple

from airflow_provider_patsnap.endpoints import Column, Record, Reject
from airflow_provider_patsnap.exceptions import PatsnapInputError

REJECT_COLUMNS = (
    Column("reject_key", "VARCHAR(40)", "sha1 of the other columns but rejected_at; the primary key"),
    Column("endpoint", "VARCHAR(8)", "PatSnap API code, P026 for example"),
    Column("pn", "TEXT", "patent number, when the vendor gave one"),
    Column("patent_id", "TEXT", "PatSnap patent id, when the vendor gave one"),
    Column("reason", "TEXT", "why the data could not become a row"),
    Column("raw_value", "TEXT", "the vendor's record (or payload) as JSON, exactly as received"),
    Column("rejected_at", "VARCHAR(32)", "UTC time of the rejection, ISO 8601"),
)


WriteMode = Literal["merge", "sync", "history"]
WRITE_MODES: tuple[WriteMode, ...] = ("merge", "sync", "history")


class FetchedPatent(NamedTuple):
    """One requested patent of a batch: what a sink needs to make its rows true for that patent."""

    requested: str  # the id as it was requested
    echoed: str | None  # the id the vendor's object carries, as the rows hold it; None: no data
    rows: int  # rows its records became
    rejected: bool  # some of its data could not become rows: its other rows are not removed


class FetchedBatch(NamedTuple):
    """Every patent a batch asked for (found or not) and when the batch was fetched."""

    patents: Sequence[FetchedPatent]
    fetched_at: str


@dataclass
class WriteCounts:
    """What the write modes changed beyond upserting rows; counted once a batch is committed."""

    rows_removed: int = 0  # sync: rows of fetched patents that PatSnap no longer returns
    patents_emptied: int = 0  # sync and history: patents that had rows and now have no data
    versions_opened: int = 0  # history: new or changed records
    versions_closed: int = 0  # history: changed or removed records

    def add(self, other: WriteCounts) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


def reject_row(reject: Reject, rejected_at: str) -> Record:
    """A reject as a row; the same reject on a rerun gets the same key, so it replaces, not repeats."""
    text = "\x1f".join(str(value) for value in reject)
    key = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()
    return {"reject_key": key, **reject._asdict(), "rejected_at": rejected_at}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RowLimitExceededError(PatsnapInputError):
    """More rows than XCom should carry: the rows belong in a table or a file."""


class Sink:
    """Base of all sinks: a context manager that takes rows (and rejects) batch by batch."""

    location: str = "XCom"
    rejects_location: str = "the task log"
    write_retries: int = 0

    def __init__(self) -> None:
        self.counts = WriteCounts()

    def __enter__(self) -> Sink:
        return self

    def write_batch(
        self, rows: list[Record], rejects: Sequence[Reject] = (), fetched: FetchedBatch | None = None
    ) -> list[Reject]:
        """Land ``rows`` and keep ``rejects``; return every reject of the batch, including rows the
        destination itself refused. ``fetched`` names every patent the batch asked for, which the
        ``sync`` and ``history`` write modes need to remove or close what PatSnap no longer returns."""
        raise NotImplementedError

    def close(self, ok: bool) -> None:
        """Finish: publish what was written when ``ok``, discard what can be discarded otherwise."""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(ok=exc_type is None)


class XComSink(Sink):
    """Keeps rows in memory to be returned to XCom; refuses to hold more than ``row_limit``.

    Rejects have nowhere to go but the task log (the operator logs them).
    """

    def __init__(self, row_limit: int) -> None:
        super().__init__()
        self.row_limit = row_limit
        self.rows: list[Record] = []

    def write_batch(
        self, rows: list[Record], rejects: Sequence[Reject] = (), fetched: FetchedBatch | None = None
    ) -> list[Reject]:
        if len(self.rows) + len(rows) > self.row_limit:
            raise RowLimitExceededError(
                f"more than xcom_row_limit={self.row_limit} rows: XCom is for small results. Land the rows "
                "in a warehouse with sql_conn_id (and table), or in files with output_path, "
                "or raise xcom_row_limit"
            )
        self.rows.extend(rows)
        return list(rejects)
