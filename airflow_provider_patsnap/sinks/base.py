"""The sink contract, and the XCom sink.

A sink is used as a context manager: :meth:`Sink.write_batch` once per group of fetched batches as they
arrive, and leaving the ``with`` block commits (a clean exit) or discards (an exception) what the sink
holds. Every sink is a :class:`Sink`; a destination whose rows outlive the run (a SQL table) is also a
:class:`LastingDestination`: it has a write mode and remembers what was fetched when. Sinks know nothing
about PatSnap endpoints beyond the columns of the rows and the rejects they are given.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from airflow_provider_patsnap.endpoints import Column, Reject, Row
from airflow_provider_patsnap.exceptions import RowLimitExceededError
from airflow_provider_patsnap.ids import PatentIds
from airflow_provider_patsnap.sinks.runs import RunRecord

if TYPE_CHECKING:
    from airflow_provider_patsnap.sinks.dialects import TableIdentity

REJECT_KEY = "reject_key"
REJECT_COLUMNS = (
    Column(
        REJECT_KEY,
        "VARCHAR(40)",
        "sha1 of the other columns but rejected_at (and the reject's number among identical ones of its "
        "run, from the second); the primary key",
    ),
    Column("endpoint", "VARCHAR(8)", "PatSnap API code, P026 for example"),
    Column("pn", "TEXT", "patent number, when the vendor gave one"),
    Column("patent_id", "TEXT", "PatSnap patent id, when the vendor gave one"),
    Column("reason", "TEXT", "why the data could not become a row"),
    Column("raw_value", "TEXT", "the vendor's record (or payload) as JSON, exactly as received"),
    Column("rejected_at", "VARCHAR(32)", "UTC time the batch holding it was fetched, ISO 8601"),
)
REJECT_NAMES = tuple(column.name for column in REJECT_COLUMNS)


WriteMode = Literal["merge", "sync", "history"]
WRITE_MODES: tuple[WriteMode, ...] = ("merge", "sync", "history")


class FetchedPatent(NamedTuple):
    """One requested patent of a batch: what a sink needs to make its rows true for that patent."""

    requested: str  # the id as it was requested
    key: str  # its match key (ids.match_key)
    echoed: str | None  # the id the vendor's object carries, as the rows hold it; None: no data
    rows: int  # rows its records became
    rejected: bool  # some of its data could not become rows: its other rows are not removed


class FetchedBatch(NamedTuple):
    """Every patent the batches of one write asked for (found or not), and when they were fetched."""

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


class FreshPatents(NamedTuple):
    """Patents fetched recently enough not to be requested again."""

    keys: frozenset[str]  # their match keys
    with_data: int  # of them, how many had data: the billed units skipping them saves


NOTHING_FRESH = FreshPatents(frozenset(), 0)


def _reject_text(reject: Reject) -> str:
    return "\x1f".join(str(value) for value in reject)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def reject_row(reject: Reject, rejected_at: str, occurrence: int = 1) -> tuple[Any, ...]:
    """A reject as a row in :data:`REJECT_COLUMNS` order, keyed by the sha1 of its fields; the
    ``occurrence``-th identical reject of a run (two identical vendor objects) adds its number from the
    second on. The same rejects on a rerun get the same keys, so they replace, not repeat."""
    text = _reject_text(reject)
    return (_sha1(text if occurrence == 1 else f"{text}\x1f{occurrence}"), *reject, rejected_at)


class RejectKeys:
    """Numbers a run's identical rejects, so each is kept: one reject per object or record, never merged
    (a table keyed on the plain sha1 kept one row for two identical objects while the summary counted
    two). The first keeps the plain key, so rows written by earlier versions stay the same."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()  # plain keys of the rejects kept so far

    def rows(self, rejects: Sequence[Reject], rejected_at: str) -> tuple[list[tuple[Any, ...]], Counter[str]]:
        """The rows of ``rejects``, and the counts they leave: pass those to :meth:`keep` once the rows
        are written for good (a write that is rolled back and repeated numbers them again alike)."""
        seen = Counter(self._seen)
        rows = []
        for reject in rejects:
            text = _reject_text(reject)
            plain = _sha1(text)
            seen[plain] += 1
            key = plain if seen[plain] == 1 else _sha1(f"{text}\x1f{seen[plain]}")
            rows.append((key, *reject, rejected_at))
        return rows, seen

    def keep(self, seen: Counter[str]) -> None:
        self._seen = seen


class Sink(Protocol):
    """What every destination does: take rows batch by batch, keep the rejects, finish."""

    location: str  # where the rows go, for messages and the summary's ``destination``
    rejects_location: str
    columns: tuple[Column, ...]  # the destination's columns; a row's values come first, in this order

    def write_batch(self, rows: list[Row], rejects: Sequence[Reject], fetched: FetchedBatch) -> list[Reject]:
        """Land ``rows`` and keep ``rejects``; return every reject of the write, including rows the
        destination itself refused. ``fetched`` names every patent the write's batches asked for."""
        ...

    def close(self, ok: bool) -> None:
        """Finish: publish what was written when ``ok``, discard what can be discarded otherwise."""
        ...

    def record_run(self, record: RunRecord) -> None:
        """The run's record as it will stand once the next write lands (a table writes it in that
        write's transaction)."""
        ...

    def finish_run(self, record: RunRecord) -> None:
        """The try ended: keep its final record where this destination keeps records (a table's
        ``patsnap_runs``, a file's ``<name>.run.json``). Never raises: it must not hide the run's own
        error, nor fail a run whose rows landed."""
        ...

    def __enter__(self) -> Sink: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class LastingDestination(Sink, Protocol):
    """A destination whose rows outlive the run: a write mode makes them true for each fetched patent,
    and it remembers what was fetched when (``refresh_after``)."""

    write_mode: WriteMode
    counts: WriteCounts
    write_retries: int  # writes repeated after losing a race (a deadlock, a busy file)
    #: The table as its database names it, resolved once when the destination opened: what the lock,
    #: the ``_state`` and ``_rejects`` tables, ``location`` and the lineage name are keyed on.
    identity: TableIdentity

    def fresh(self, ids: PatentIds, *, since: datetime, now: datetime) -> FreshPatents:
        """Those of ``ids`` fetched after ``since`` and not after ``now``."""
        ...


class ClosingOnExit:
    """``with`` support for a sink: leaving the block calls ``close(ok)``, ok when nothing was raised."""

    def close(self, ok: bool) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(ok=exc_type is None)


class XComSink(ClosingOnExit):
    """Keeps rows in memory, as dicts, to be returned to XCom; refuses to hold more than ``row_limit``.

    Rejects have nowhere to go but the task log (the operator logs them).
    """

    location = "XCom"
    rejects_location = "the task log"

    def __init__(self, columns: Sequence[Column], row_limit: int) -> None:
        self.columns = tuple(columns)
        self.row_limit = row_limit
        self.rows: list[dict[str, Any]] = []
        self._names = tuple(column.name for column in columns)

    def write_batch(self, rows: list[Row], rejects: Sequence[Reject], fetched: FetchedBatch) -> list[Reject]:
        if len(self.rows) + len(rows) > self.row_limit:
            raise RowLimitExceededError(
                f"more than xcom_row_limit={self.row_limit} rows: XCom is for small results. Land the rows "
                "in a warehouse with sql_conn_id (and table), or in files with output_path, "
                "or raise xcom_row_limit"
            )
        names = self._names
        self.rows.extend(dict(zip(names, row, strict=True)) for row in rows)
        return list(rejects)

    def close(self, ok: bool) -> None:
        """Nothing to publish: the operator returns :attr:`rows`."""

    def record_run(self, record: RunRecord) -> None:
        """XCom keeps no run record: the task's summary is its return value."""

    def finish_run(self, record: RunRecord) -> None:
        """XCom keeps no run record: the task's summary is its return value."""
