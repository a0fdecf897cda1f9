"""What ``sync`` and ``history`` do to the rows of the patents a batch fetched, beyond an upsert.

``sync`` deletes the rows PatSnap no longer returns; ``history`` keeps every version of a record with
``valid_from`` / ``valid_to`` (slowly-changing dimension, type 2) and touches nothing that did not change.
Both run inside the batch's transaction, after the table is locked (the dialect's
:meth:`~airflow_provider_patsnap.sinks.dialects.SqlDialect.begin`, keyed on the table's resolved
identity, so ``t``, ``public.t`` and ``T`` are one lock on PostgreSQL), so two shards fetching the same
patent write one after the other and each sees what the other committed. (One lock per table, not per
patent: a write of 16 batches would take 1,600 locks, more than PostgreSQL's shared lock table holds
for a few shards at once; one lock also means no two writers can wait for each other.)

A patent's rows are found by every spelling the table may hold them under: as requested, as PatSnap
echoed it now, and as the state table remembers PatSnap echoing it before (a patent with no data now
has no echo). Rows are tuples in the table's column order; the record key is the first value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from airflow_provider_patsnap.endpoints import RECORD_KEY, Column, Row
from airflow_provider_patsnap.sinks.base import FetchedBatch, WriteCounts
from airflow_provider_patsnap.sinks.dialects.base import ValueList

VERSION_KEY = "version_key"
HISTORY_COLUMNS = (
    Column(VERSION_KEY, "VARCHAR(40)", "sha1 of record_key, row_hash and valid_from; the primary key"),
    Column("row_hash", "VARCHAR(40)", "sha1 of the record's values: a change makes a new version"),
    Column(
        "valid_from",
        "VARCHAR(32)",
        "UTC time this version became current (its batch's fetch time, or later), ISO 8601",
    ),
    Column("valid_to", "VARCHAR(32)", "UTC time it was found changed or gone (likewise); NULL while current"),
    Column("is_current", "SMALLINT", "1 for the version PatSnap returns now, else 0"),
)
_NOT_HASHED = frozenset(
    {RECORD_KEY, "fetched_at"}
)  # fetched_at changes on every fetch; the key follows values


class Scope(NamedTuple):
    """The patents of a batch as the table knows them."""

    patent_of: dict[str, str]  # column value (any spelling the rows may hold) → the patent's match key
    removable: frozenset[str]  # match keys of patents whose vanished rows go (none of their data rejected)
    empty: frozenset[str]  # match keys of patents without a row in this batch

    @property
    def values(self) -> list[str]:
        return sorted(self.patent_of)

    def keeping(self, patent_keys: Collection[str]) -> Scope:
        """The same scope, with nothing removed (or closed) for these patents: some of their data was
        refused."""
        return self._replace(removable=self.removable - frozenset(patent_keys))


def scope_of(batch: FetchedBatch, spellings: Mapping[str, str]) -> Scope:
    """The batch's patents under every spelling their rows may have; ``spellings`` maps a patent's match
    key to the spelling the state table remembers."""
    patent_of: dict[str, str] = {}
    for patent in batch.patents:
        patent_of[patent.requested] = patent.key
        if patent.key in spellings:
            patent_of[spellings[patent.key]] = patent.key  # as an earlier answer spelled it
        if patent.echoed is not None:
            patent_of[patent.echoed] = patent.key  # what the rows hold, in the vendor's spelling
    return Scope(
        patent_of,
        frozenset(patent.key for patent in batch.patents if not patent.rejected),
        frozenset(patent.key for patent in batch.patents if patent.rows == 0),
    )


class ModeWriter:
    """Selects the batch's patents' rows and works out what to delete, close and insert."""

    def __init__(self, table: str, column: str, names: Sequence[str], values: ValueList) -> None:
        self.table = table
        self.column = column
        self.placeholder = values.placeholder
        self.values = values
        self._hashed = [position for position, name in enumerate(names) if name not in _NOT_HASHED]

    def _select(self, cursor: Any, what: str, scope: Scope, where: str = "") -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        for condition, parameters in self.values.chunks(self.column, scope.values):
            cursor.execute(
                f"SELECT {what}, {self.column} FROM {self.table} WHERE {where}{condition}", parameters
            )
            found += cursor.fetchall()
        return found

    def _for_each(self, cursor: Any, statement: str, key: str, keys: Sequence[str], *head: Any) -> None:
        """``statement`` (ending in ``WHERE``) for every one of ``keys``: one statement a list of values
        (an array on PostgreSQL and DuckDB, ``IN`` lists of 500 elsewhere; MySQL's drivers would send an
        ``executemany`` of it as one round trip a key). ``head``: parameters before the keys'."""
        for condition, parameters in self.values.chunks(key, keys):
            cursor.execute(f"{statement} {condition}", [*head, *parameters])

    def remove_vanished(self, cursor: Any, rows: list[Row], scope: Scope, counts: WriteCounts) -> None:
        """``sync``: delete the scope's rows whose key is not among ``rows``, in key order."""
        keep = {row[0] for row in rows}
        existing = self._select(cursor, RECORD_KEY, scope)
        vanished = {
            key: scope.patent_of.get(value, "")
            for key, value in existing
            if key not in keep and scope.patent_of.get(value) in scope.removable
        }
        if vanished:
            self._for_each(cursor, f"DELETE FROM {self.table} WHERE", RECORD_KEY, sorted(vanished))
        counts.rows_removed += len(vanished)
        counts.patents_emptied += len(set(vanished.values()) & scope.empty)

    def versions(
        self, cursor: Any, rows: list[Row], scope: Scope, fetched_at: str, counts: WriteCounts
    ) -> list[Row]:
        """``history``: close changed and vanished versions; return the versions to insert.

        They change at the batch's fetch time, or later if another batch already wrote a later time
        for these patents (a shard that fetched after this batch but committed before it): a version
        never ends before it starts, nor starts before the one it follows ends, so an as-of query
        finds at most one version of a record.
        """
        valid_at = max(fetched_at, self._latest_change(cursor, scope))
        new = {row[0]: (row, self.row_hash(row)) for row in rows}
        closed: dict[str, str] = {}  # version key → its patent when it closes because it vanished
        current = self._select(cursor, f"{VERSION_KEY}, {RECORD_KEY}, row_hash", scope, "is_current = 1 AND ")
        for version_key, key, row_hash, value in current:
            if key in new:
                if new[key][1] == row_hash:
                    del new[key]  # unchanged: not written at all
                else:
                    closed[version_key] = ""
            elif scope.patent_of.get(value) in scope.removable:
                closed[version_key] = scope.patent_of.get(value, "")
        if closed:
            update = f"UPDATE {self.table} SET valid_to = {self.placeholder}, is_current = 0 WHERE"
            self._for_each(cursor, update, VERSION_KEY, sorted(closed), valid_at)
        counts.versions_closed += len(closed)
        counts.versions_opened += len(new)
        counts.patents_emptied += len({patent for patent in closed.values() if patent} & scope.empty)
        return [as_version(row, row_hash, valid_at) for row, row_hash in new.values()]

    def _latest_change(self, cursor: Any, scope: Scope) -> str:
        """The latest ``valid_from`` or ``valid_to`` among the scope's versions ("" when none)."""
        latest = ""
        for condition, parameters in self.values.chunks(self.column, scope.values):
            cursor.execute(
                f"SELECT MAX(COALESCE(valid_to, valid_from)) FROM {self.table} WHERE {condition}", parameters
            )
            found = cursor.fetchone()[0]
            latest = max(latest, str(found) if found is not None else "")
        return latest

    def row_hash(self, row: Row) -> str:
        text = json.dumps([row[position] for position in self._hashed], ensure_ascii=True, default=str)
        return hashlib.sha1(text.encode("ascii")).hexdigest()


def as_version(row: Row, row_hash: str, valid_at: str) -> Row:
    """``row`` as a new current version: its values, then :data:`HISTORY_COLUMNS`'."""
    version_key = hashlib.sha1(f"{row[0]}\x1f{row_hash}\x1f{valid_at}".encode()).hexdigest()
    return (*row, version_key, row_hash, valid_at, None, 1)
