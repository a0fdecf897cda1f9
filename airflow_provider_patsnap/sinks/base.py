"""The sink contract, and the XCom sink.

A sink is used as a context manager: :meth:`Sink.write_batch` once per batch as results arrive, and
leaving the ``with`` block commits (a clean exit) or discards (an exception) what the sink holds. Sinks
know nothing about PatSnap endpoints beyond the columns of the rows and the rejects they are given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType

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

    def __enter__(self) -> Sink:
        return self

    def write_batch(self, rows: list[Record], rejects: Sequence[Reject] = ()) -> list[Reject]:
        """Land ``rows`` and keep ``rejects``; return every reject of the batch, including rows the
        destination itself refused."""
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
        self.row_limit = row_limit
        self.rows: list[Record] = []

    def write_batch(self, rows: list[Record], rejects: Sequence[Reject] = ()) -> list[Reject]:
        if len(self.rows) + len(rows) > self.row_limit:
            raise RowLimitExceededError(
                f"more than xcom_row_limit={self.row_limit} rows: XCom is for small results. Land the rows "
                "in a warehouse with sql_conn_id (and table), or in files with output_path, "
                "or raise xcom_row_limit"
            )
        self.rows.extend(rows)
        return list(rejects)
