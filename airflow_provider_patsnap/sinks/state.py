"""What each patent cost and when: the ``<table>_state`` table behind ``refresh_after``.

One row per fetched patent (and endpoint parameters, such as P022's ``lang``): when it was last fetched,
whether PatSnap had data for it and how many rows it became. Patents with no data are kept too, so a
later run does not pay to ask again. The SQL sink writes a batch's state in the same transaction as its
rows, and only for patents whose every record landed: a patent is never remembered as fetched unless all
its rows are in the table.

It also remembers how the table's rows spell the patent (PatSnap echoes its own spelling, ``CN1A`` for
a request of ``cn1a``), so a later batch that asked in any spelling and got no data still finds the
rows to delete or close.

A state row is a promise not to pay again, so one that cannot be read (a ``found`` that is not 0 or 1, a
``fetched_at`` that is not an ISO 8601 time, or one in the future: written by a clock that was ahead)
promises nothing: its patent is fetched again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from airflow_provider_patsnap.endpoints import Column, IdKind
from airflow_provider_patsnap.ids import PatentIds
from airflow_provider_patsnap.sinks.base import FetchedBatch, FreshPatents
from airflow_provider_patsnap.sinks.dialects.base import ValueList

log = logging.getLogger(__name__)

STATE_SUFFIX = "_state"
STATE_KEY = "state_key"
STATE_COLUMNS = (
    Column(STATE_KEY, "VARCHAR(40)", "sha1 of endpoint, id kind, patent and parameters; the primary key"),
    Column("endpoint", "VARCHAR(8)", "PatSnap API code, P026 for example"),
    Column("id_kind", "VARCHAR(16)", "patent_number or patent_id"),
    Column(
        "patent",
        "TEXT",
        "the patent as the table's rows spell it: as PatSnap last echoed it, else as requested",
    ),
    Column("params", "TEXT", "the endpoint parameters of the request, as JSON (P022's lang)"),
    Column("found", "INTEGER", "1 when PatSnap returned data for the patent (a billed unit), else 0"),
    Column("row_count", "INTEGER", "rows the patent's data became"),
    Column("fetched_at", "VARCHAR(32)", "UTC time of the fetch, ISO 8601"),
)
STATE_NAMES = tuple(column.name for column in STATE_COLUMNS)
#: Runs a query and returns its rows: ``read(sql, parameters)``.
Reader = Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]]


def _instant(text: Any) -> datetime | None:
    """An aware ``fetched_at`` time, or None when the text is not one."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class FetchState:
    """Keys and rows of ``<table>_state`` for one endpoint, id kind and set of parameters. The table
    itself is named by the SQL sink: its table's resolved identity with :data:`STATE_SUFFIX`, so every
    spelling of one table (``t``, ``public.t``, ``T`` on PostgreSQL) shares one state table."""

    def __init__(self, endpoint: str, id_kind: IdKind, params: Mapping[str, Any]) -> None:
        self.endpoint = endpoint
        self.id_kind = id_kind
        self.params = json.dumps(dict(params), sort_keys=True, ensure_ascii=True)
        self._key_head, self._key_tail = f"{endpoint}\x1f{id_kind}\x1f", f"\x1f{self.params}"

    def key(self, patent_key: str) -> str:
        """The state key of a patent whose match key (:func:`~airflow_provider_patsnap.ids.match_key`) is
        ``patent_key``: the sha1 of endpoint, id kind, that key and the parameters, joined by ``\\x1f``;
        ids PatSnap treats as the same (``cn1`` / ``CN1``) share it."""
        return hashlib.sha1(f"{self._key_head}{patent_key}{self._key_tail}".encode()).hexdigest()

    def keys(self, patent_keys: Iterable[str]) -> dict[str, str]:
        """Match key → state key, each computed once per write."""
        return {patent_key: self.key(patent_key) for patent_key in patent_keys}

    def row_spellings(
        self, cursor: Any, table: str, values: ValueList, keys: Mapping[str, str]
    ) -> dict[str, str]:
        """How the table's rows spell the patents of ``keys`` (:meth:`keys`), as the last batch that
        fetched each recorded it (read from the state table ``table``): match key → spelling, for the
        patents this table has state for."""
        stored: dict[str, str] = {}
        for condition, parameters in values.chunks(STATE_KEY, sorted(set(keys.values()))):
            cursor.execute(f"SELECT {STATE_KEY}, patent FROM {table} WHERE {condition}", parameters)
            stored.update((str(key), str(spelling)) for key, spelling in cursor.fetchall())
        return {patent_key: stored[key] for patent_key, key in keys.items() if key in stored}

    def rows(
        self,
        batch: FetchedBatch,
        spellings: Mapping[str, str] | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> list[tuple[Any, ...]]:
        """The batch's state rows as value tuples in column order, sorted by key (the lock order).

        A patent with data is recorded in the spelling PatSnap echoed (the one its rows hold); one without
        keeps the spelling in ``spellings`` (:meth:`row_spellings`), as its rows may still be in the table.
        ``keys``: the batch's :meth:`keys`, if already computed."""
        spellings = spellings or {}
        keys = keys or self.keys(patent.key for patent in batch.patents)
        by_key = {
            keys[patent.key]: (  # in STATE_COLUMNS order
                keys[patent.key],
                self.endpoint,
                self.id_kind,
                patent.echoed or spellings.get(patent.key, patent.requested),
                self.params,
                int(patent.echoed is not None),
                patent.rows,
                batch.fetched_at,
            )
            for patent in batch.patents
        }
        return [row for _, row in sorted(by_key.items())]

    def fresh(
        self,
        read: Reader,
        table: str,
        values: ValueList,
        ids: PatentIds,
        *,
        since: datetime,
        now: datetime,
    ) -> FreshPatents:
        """The ``ids`` the state table ``table`` says were fetched after ``since`` and not after ``now``,
        queried through ``read``. A state row that cannot be read, or says it was fetched in the future,
        makes its patent not fresh; the rows ignored for that are counted in one warning."""
        wanted = dict(zip(self.keys(ids.keys).values(), ids.keys, strict=True))  # state key → match key
        fresh: dict[str, int] = {}
        unreadable = future = 0
        for condition, parameters in values.chunks(STATE_KEY, list(wanted)):
            records = read(
                f"SELECT {STATE_KEY}, found, fetched_at FROM {table} WHERE {condition}", parameters
            )
            for key, found, fetched_at in records:
                moment = _instant(fetched_at)
                if moment is None or found not in (0, 1) or isinstance(found, bool):
                    unreadable += 1
                elif moment > now:
                    future += 1
                elif moment > since:
                    fresh[wanted[str(key)]] = int(found)
        if unreadable or future:
            log.warning(
                "%s: %d state row(s) could not be read (a found that is not 0 or 1, or a fetched_at that is "
                "not an ISO 8601 time) and %d say they were fetched after now (%s: a clock that was ahead); "
                "their patents are fetched again",
                table,
                unreadable,
                future,
                now.isoformat(timespec="seconds"),
            )
        # Ids PatSnap treats as the same are requested (and billed) once: one unit per key.
        return FreshPatents(frozenset(fresh), sum(fresh.values()))


def patents_landed(batch: FetchedBatch, unlanded_keys: Sequence[str] = ()) -> FetchedBatch:
    """The batch less the patents not every record of which landed: those the mapping rejected data
    of, and those whose match key is in ``unlanded_keys`` (rows the database refused)."""
    unlanded = frozenset(unlanded_keys)
    kept = [patent for patent in batch.patents if not patent.rejected and patent.key not in unlanded]
    return batch._replace(patents=kept)
