"""The SQL sink: rows written through any common.sql hook (SQLite, PostgreSQL, ...) in a write mode.

``merge`` upserts rows on their key; ``sync`` also deletes the rows of fetched patents that PatSnap no
longer returns; ``history`` keeps every version of a record (see :mod:`.sql_modes`).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from airflow_provider_patsnap.endpoints import RECORD_KEY, Column, IdKind, Reject, Row, patent_field, raw_json
from airflow_provider_patsnap.exceptions import InvalidDestinationError
from airflow_provider_patsnap.hooks._shared import Cancellation, SystemClock
from airflow_provider_patsnap.ids import PatentIds, match_key
from airflow_provider_patsnap.sinks.base import (
    NOTHING_FRESH,
    REJECT_COLUMNS,
    REJECT_KEY,
    WRITE_MODES,
    ClosingOnExit,
    FetchedBatch,
    FreshPatents,
    RejectKeys,
    WriteCounts,
    WriteMode,
)
from airflow_provider_patsnap.sinks.dialects import TableIdentity
from airflow_provider_patsnap.sinks.names import REJECTS_SUFFIX
from airflow_provider_patsnap.sinks.runs import RUN_COLUMNS, RUN_KEY, RUNS_TABLE, RunRecord
from airflow_provider_patsnap.sinks.sql_bulk import CopyUpsert, can_copy
from airflow_provider_patsnap.sinks.sql_database import SqlDatabase
from airflow_provider_patsnap.sinks.sql_modes import (
    HISTORY_COLUMNS,
    VERSION_KEY,
    ModeWriter,
    Scope,
    as_version,
    scope_of,
)
from airflow_provider_patsnap.sinks.sql_statistics import PlannerStatistics
from airflow_provider_patsnap.sinks.sql_tables import TableKeeper
from airflow_provider_patsnap.sinks.state import (
    STATE_COLUMNS,
    STATE_KEY,
    STATE_NAMES,
    STATE_SUFFIX,
    FetchState,
    patents_landed,
)

log = logging.getLogger(__name__)


class RefusedRow(NamedTuple):
    """A row the database would not store, and its message."""

    row: Row
    reason: str


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


class SqlSink(ClosingOnExit):
    """Writes rows into ``table`` through the common.sql hook of ``conn_id``, on one connection.

    When it opens, before the first call to PatSnap: the database's dialect is chosen from the hook
    (:class:`~airflow_provider_patsnap.exceptions.UnsupportedDatabaseError` for a database it does not
    write to), the connection prepared, and ``table`` resolved once to the identity the database uses
    (:attr:`identity`: schema and case as the database names it); the lock, ``<table>_state``,
    ``<table>_rejects``, the summary's destination and the lineage name are all keyed on it. The table
    is created (``PRIMARY KEY (record_key)``, or ``(version_key)`` in ``history`` mode) or, if it
    exists, checked for every column and that unique key. Each batch is one transaction: in ``sync``
    and ``history`` the table locked and the batch's vanished rows deleted or closed; rows
    de-duplicated and sorted by key (so concurrent writes of overlapping patents lock rows in the same
    order and cannot deadlock) and upserted; what each patent cost recorded in ``<table>_state`` when
    ``state`` is given; rejects added to ``<table>_rejects``; committed. A deadlock or serialization
    failure repeats the write of the same rows, never the fetch. A value the database refuses rejects
    that row alone. The wait between write attempts ends at once when ``cancellation`` is cancelled
    (the operator passes its hook's, which ``on_kill`` cancels): the write is abandoned, what was
    committed before stays.
    """

    def __init__(
        self,
        conn_id: str,
        table: str,
        columns: Sequence[Column],
        *,
        endpoint: str,
        write_mode: WriteMode = "merge",
        id_kind: IdKind = "patent_number",
        state: FetchState | None = None,
        write_attempts: int = 6,
        cancellation: Cancellation | None = None,
    ) -> None:
        if write_mode not in WRITE_MODES:
            raise InvalidDestinationError(f"write_mode must be one of {WRITE_MODES}, got {write_mode!r}")
        self.write_mode = write_mode
        self.state = state
        self.columns = (*columns, *HISTORY_COLUMNS) if write_mode == "history" else tuple(columns)
        self.key = VERSION_KEY if write_mode == "history" else RECORD_KEY
        self.endpoint = endpoint
        self.write_attempts = write_attempts
        self.write_retries = 0
        self.counts = WriteCounts()
        self._reject_keys = RejectKeys()
        self._rejects_seen: Counter[str] | None = None  # the write's reject counts, kept once committed
        self.cancellation = cancellation or Cancellation(SystemClock())
        self._database: SqlDatabase | None = None
        database = self._database = SqlDatabase(conn_id, table)  # before any paid call
        dialect = self.dialect = database.dialect
        self._connection: Any = database.connection
        identity = self.identity = database.identity
        self.rejects_identity = identity.with_suffix(REJECTS_SUFFIX)
        self.state_identity: TableIdentity | None = (
            identity.with_suffix(STATE_SUFFIX) if state is not None else None
        )
        self.location = f"{conn_id}:{identity.qualified}"
        self.rejects_location = f"{conn_id}:{self.rejects_identity.qualified}"
        self._names = [column.name for column in columns]  # what a row holds: the table's first columns
        self._table_names = [column.name for column in self.columns]
        self._upsert = dialect.upsert(identity, self.columns, self.key)
        self._reject_upsert = dialect.upsert(self.rejects_identity, REJECT_COLUMNS, REJECT_KEY)
        self._state_upsert = (
            dialect.upsert(self.state_identity, STATE_COLUMNS, STATE_KEY)
            if self.state_identity is not None
            else None
        )
        # One run record a task try, beside every PatSnap table of the schema (sinks/runs.py).
        self.runs_identity = identity._replace(name=RUNS_TABLE)
        self._run_upsert = dialect.upsert(self.runs_identity, RUN_COLUMNS, RUN_KEY)
        self._run: RunRecord | None = None
        column = patent_field(id_kind)
        self._patent_at = self._names.index(column)
        self._value_list = dialect.value_list()
        self._modes = ModeWriter(identity.qualified, column, self._names, self._value_list)
        # PostgreSQL through psycopg 3: rows and state are copied in and upserted, one statement each.
        self._copy_rows: CopyUpsert | None = None
        self._copy_state: CopyUpsert | None = None
        self._state_keys: dict[str, str] = {}  # the write's patents' state keys, computed once
        try:
            tables = TableKeeper(dialect, self._connection)
            tables.ensure(identity, self.columns, self.key)
            if write_mode != "merge":  # sync and history find a patent's rows by its id
                tables.ensure_index(identity, next(c for c in self.columns if c.name == column))
            tables.ensure(self.rejects_identity, REJECT_COLUMNS, REJECT_KEY)
            if self.state_identity is not None:
                tables.ensure(self.state_identity, STATE_COLUMNS, STATE_KEY)
            tables.ensure(self.runs_identity, RUN_COLUMNS, RUN_KEY)
            with dialect.cursor(self._connection) as cursor:
                table_rows = dialect.row_estimate(cursor, identity)
            dialect.commit(self._connection)
            grown = [identity] if self.state_identity is None else [identity, self.state_identity]
            self._statistics = PlannerStatistics(dialect, self._connection, grown, table_rows)
            if dialect.name == "postgresql" and can_copy(self._connection):
                self._copy_rows = CopyUpsert(
                    self._connection, identity.qualified, self._table_names, self.key, "patsnap_stage"
                )
                if self.state_identity is not None:
                    self._copy_state = CopyUpsert(
                        self._connection,
                        self.state_identity.qualified,
                        STATE_NAMES,
                        STATE_KEY,
                        "patsnap_state_stage",
                    )
        except BaseException:
            self.close(ok=False)
            raise

    def fresh(self, ids: PatentIds, *, since: datetime, now: datetime) -> FreshPatents:
        """Those of ``ids`` this table's ``<table>_state`` says were fetched after ``since`` (and not
        after ``now``); nothing is fresh without a state table."""
        if self.state is None or self.state_identity is None or self._database is None:
            return NOTHING_FRESH
        table = self.state_identity.qualified
        return self.state.fresh(self._database.read, table, self._value_list, ids, since=since, now=now)

    def write_batch(self, rows: list[Row], rejects: Sequence[Reject], fetched: FetchedBatch) -> list[Reject]:
        # The last row of a key wins, as a second upsert of it would; sorted, locks come in one order.
        unique = sorted({row[0]: row for row in rows}.values(), key=itemgetter(0))
        attempt = 1
        while True:
            try:
                self._rejects_seen = None
                refused, counts = self._write(unique, rejects, fetched)
                self.dialect.commit(self._connection)
                self.counts.add(counts)
                if self._rejects_seen is not None:
                    self._reject_keys.keep(self._rejects_seen)
                self._statistics.written(len(unique))
                return [*rejects, *refused]
            except Exception as error:
                self.dialect.rollback(self._connection)
                if not self.dialect.is_retryable(error) or attempt == self.write_attempts:
                    raise
                self.write_retries += 1
                pause = min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
                log.warning(
                    "Writing %d rows to %s lost a race (%s); writing them again in %.2f s (attempt %d of %d)",
                    len(unique),
                    self.identity.qualified,
                    first_line(error),
                    pause,
                    attempt + 1,
                    self.write_attempts,
                )
            self.cancellation.sleep(pause)  # raises PatsnapCancelledError once the task is stopped
            attempt += 1

    def _write(
        self, rows: list[Row], rejects: Sequence[Reject], fetched: FetchedBatch
    ) -> tuple[list[Reject], WriteCounts]:
        with self.dialect.cursor(self._connection) as cursor:
            try:
                return self._write_in_mode(cursor, rows, rejects, fetched)
            except Exception as error:
                if not self.dialect.is_data_error(error):
                    raise
            # The database refused a value. Undo the batch, the mode's deletes and closes too: they must
            # not be done for a patent whose new data does not land. Then write it again around the
            # refused rows: each row in a savepoint, or, without savepoints (DuckDB), each row tried
            # alone first and the batch written once more without the refused ones.
            self.dialect.rollback(self._connection)
            if self.dialect.savepoints:
                return self._write_in_mode(cursor, rows, rejects, fetched, row_by_row=True)
            refused = self._refused_alone(rows, fetched)
            left_out = {item.row[0] for item in refused}
            kept = [row for row in rows if row[0] not in left_out]
            return self._write_in_mode(cursor, kept, rejects, fetched, refused=refused)

    def _write_in_mode(
        self,
        cursor: Any,
        rows: list[Row],
        rejects: Sequence[Reject],
        fetched: FetchedBatch,
        row_by_row: bool = False,
        refused: Sequence[RefusedRow] = (),
    ) -> tuple[list[Reject], WriteCounts]:
        """One transaction: lock, apply the mode, upsert (``row_by_row``: around what the database
        refuses), record state and rejects. ``refused``: rows already known to be refused, left out of
        ``rows``; their patents' other rows are kept."""
        scope, spellings = self._begin(cursor, fetched, row_by_row)
        refused = list(refused)
        if refused and scope is not None:
            scope = scope.keeping({self._patent_key(scope, item.row) for item in refused})
        if row_by_row:
            counts, newly = self._write_around_refusals(cursor, rows, scope, fetched)
            refused += newly
        else:
            counts = WriteCounts()
            self._upsert_rows(cursor, self._apply_mode(cursor, rows, scope, fetched, counts))
        if self.state is not None:
            # A patent is remembered as fetched only when every record of it landed: the next run (with
            # refresh_after too) asks again for one whose data was rejected or refused.
            landed = patents_landed(fetched, [self._patent_key(scope, item.row) for item in refused])
            state_rows = self.state.rows(landed, spellings, self._state_keys)
            if self._copy_state is not None:
                self._copy_state(cursor, state_rows)
            elif self._state_upsert is not None:
                self._state_upsert.many(cursor, state_rows)
        names = self._table_names  # a refused row is as the table would have held it (a version in history)
        refused_rejects = [
            Reject(
                self.endpoint,
                item.row[1],
                item.row[2],
                item.reason,
                raw_json(dict(zip(names, item.row, strict=True))),
            )
            for item in refused
        ]
        if rejects or refused_rejects:
            self._write_rejects(cursor, [*rejects, *refused_rejects], fetched.fetched_at)
        if self._run is not None:
            # The record as this transaction makes it true: less the rows the database refused.
            expected = self._run.counts
            record = self._run._replace(
                counts=expected._replace(
                    rows_written=expected.rows_written - len(refused),
                    rejects=expected.rejects + len(refused),
                    rows_removed=expected.rows_removed + counts.rows_removed,
                )
            )
            self._run_upsert.many(cursor, [record.row()])
        return refused_rejects, counts

    def record_run(self, record: RunRecord) -> None:
        """The run's record as it stands once the next write lands (counting all its rows and rejects,
        and this sink's removals so far): that write's transaction makes it true, less what the database
        refused."""
        self._run = record._replace(counts=record.counts._replace(rows_removed=self.counts.rows_removed))

    def finish_run(self, record: RunRecord) -> None:
        """The try's final record, in a transaction of its own; a failure is logged, never raised."""
        if self._connection is None:
            return
        record = record._replace(counts=record.counts._replace(rows_removed=self.counts.rows_removed))
        try:
            with self.dialect.cursor(self._connection) as cursor:
                self._run_upsert.many(cursor, [record.row()])
            self.dialect.commit(self._connection)
        except Exception as error:  # never hides the run's own error, never fails landed rows
            log.warning(
                "Writing the run record to %s failed: %s", self.runs_identity.qualified, first_line(error)
            )
            try:
                self.dialect.rollback(self._connection)
            except Exception:  # the connection is gone: nothing to undo
                pass

    def _patent_key(self, scope: Scope | None, row: Row) -> str:
        """The match key of the patent a row belongs to (known to the scope in sync and history)."""
        value = row[self._patent_at]
        return scope.patent_of.get(value, "") if scope is not None else match_key(value)

    def _write_around_refusals(
        self, cursor: Any, rows: list[Row], scope: Scope | None, fetched: FetchedBatch
    ) -> tuple[WriteCounts, list[RefusedRow]]:
        """Apply the mode and write each row in a savepoint. When the database refuses some, undo both
        and redo them without those rows, their patents' other rows kept (as for a mapping reject): what
        the mode deletes, closes and counts then goes only with rows that land."""
        refused: dict[str, RefusedRow] = {}
        cursor.execute("SAVEPOINT patsnap_batch")
        while True:  # each pass that refuses a row drops it, so this ends
            counts = WriteCounts()
            newly = self._write_one_by_one(cursor, self._apply_mode(cursor, rows, scope, fetched, counts))
            if not newly:
                cursor.execute("RELEASE SAVEPOINT patsnap_batch")
                return counts, list(refused.values())
            cursor.execute("ROLLBACK TO SAVEPOINT patsnap_batch")
            refused.update((item.row[0], item) for item in newly)
            rows = [row for row in rows if row[0] not in refused]
            if scope is not None:
                scope = scope.keeping({self._patent_key(scope, item.row) for item in newly})

    def _refused_alone(self, rows: list[Row], fetched: FetchedBatch) -> list[RefusedRow]:
        """Without savepoints: which rows the database refuses, each tried alone in a transaction rolled
        back, as the table would hold it (in ``history`` a new version; its version columns are text
        and 1, never refused)."""
        if self.write_mode == "history":
            rows = [as_version(row, self._modes.row_hash(row), fetched.fetched_at) for row in rows]
        refusals = self.dialect.refused(self._connection, self._upsert, rows)
        return [RefusedRow(rows[index], self._refusal(error)) for index, error in sorted(refusals.items())]

    def _refusal(self, error: BaseException) -> str:
        return f"{self.identity.qualified} refused the row: {first_line(error)}"

    def _begin(
        self, cursor: Any, fetched: FetchedBatch, row_by_row: bool
    ) -> tuple[Scope | None, dict[str, str]]:
        """Start the batch's transaction: lock the table for ``sync`` and ``history``; return the
        batch's scope (None for ``merge``) and how the state table spells its patents."""
        in_mode = self.write_mode != "merge" and bool(fetched.patents)
        self.dialect.begin(self._connection, cursor, self.identity if in_mode else None, row_by_row)
        spellings: dict[str, str] = {}
        if self.state is not None and self.state_identity is not None:
            self._state_keys = self.state.keys(patent.key for patent in fetched.patents)
            spellings = self.state.row_spellings(
                cursor, self.state_identity.qualified, self._value_list, self._state_keys
            )
        return (scope_of(fetched, spellings) if in_mode else None), spellings

    def _apply_mode(
        self,
        cursor: Any,
        rows: list[Row],
        scope: Scope | None,
        fetched: FetchedBatch,
        counts: WriteCounts,
    ) -> list[Row]:
        """Delete (sync) or close (history) what vanished from the scope's patents; the rows to upsert."""
        if scope is None:
            return rows
        if self.write_mode == "sync":
            self._modes.remove_vanished(cursor, rows, scope, counts)
            return rows
        return self._modes.versions(cursor, rows, scope, fetched.fetched_at, counts)

    def _upsert_rows(self, cursor: Any, rows: list[Row]) -> None:
        if not rows:
            return
        if self._copy_rows is not None:
            self._copy_rows(cursor, rows)
        else:
            self._upsert.many(cursor, rows)

    def _write_one_by_one(self, cursor: Any, rows: list[Row]) -> list[RefusedRow]:
        """Write each row in a savepoint, so the others land; return the rows the database refused."""
        refused = []
        for row in rows:
            cursor.execute("SAVEPOINT patsnap_row")
            try:
                self._upsert.one(cursor, row)
            except Exception as error:
                if not self.dialect.is_data_error(error):
                    raise
                cursor.execute("ROLLBACK TO SAVEPOINT patsnap_row")
                refused.append(RefusedRow(row, self._refusal(error)))
            cursor.execute("RELEASE SAVEPOINT patsnap_row")
        return refused

    def _write_rejects(self, cursor: Any, rejects: list[Reject], rejected_at: str) -> None:
        """Every reject its own row (identical ones numbered), in key order."""
        rows, self._rejects_seen = self._reject_keys.rows(rejects, rejected_at)
        self._reject_upsert.many(cursor, sorted(rows, key=itemgetter(0)))

    def close(self, ok: bool) -> None:
        database, self._database = self._database, None
        if database is not None:
            database.close(ok)
        self._connection = None
