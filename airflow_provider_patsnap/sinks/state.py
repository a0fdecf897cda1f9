"""What each patent cost and when: the ``<table>_state`` table behind ``refresh_after``.

One row per requested patent (and endpoint parameters, such as P022's ``lang``): when it was last
fetched, whether PatSnap had data for it and how many rows it became. Patents with no data are kept too,
so a later run does not pay to ask again. The SQL sink writes a batch's state in the same transaction as
its rows: a patent is never remembered as fetched unless its rows are in the table.

It also remembers how the table's rows spell the patent (PatSnap echoes its own spelling, ``CN1A`` for
a request of ``cn1a``), so a later batch that asked in any spelling and got no data still finds the
rows to delete or close.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from airflow_provider_patsnap.endpoints import Column, IdKind
from airflow_provider_patsnap.ids import match_key
from airflow_provider_patsnap.sinks.base import FetchedBatch
from airflow_provider_patsnap.sinks.names import check_table_name
from airflow_provider_patsnap.sinks.sql_tables import ValueList

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


def state_table_name(table: str) -> str:
    """``awards`` → ``awards_state``; ``enrich.awards`` → ``enrich.awards_state``."""
    return check_table_name(table) + STATE_SUFFIX


class Fresh(NamedTuple):
    """Patents fetched recently enough not to be requested again."""

    ids: frozenset[str]
    with_data: int  # of them, how many had data: the billed units skipping them saves


class FetchState:
    """Keys and rows of ``<table>_state`` for one endpoint, id kind and set of parameters."""

    def __init__(self, table: str, endpoint: str, id_kind: IdKind, params: Mapping[str, Any]) -> None:
        self.table = state_table_name(table)
        self.endpoint = endpoint
        self.id_kind = id_kind
        self.params = json.dumps(dict(params), sort_keys=True, ensure_ascii=True)
        self.names = [column.name for column in STATE_COLUMNS]
        self._key_head, self._key_tail = f"{endpoint}\x1f{id_kind}\x1f", f"\x1f{self.params}"

    def key(self, patent: str) -> str:
        """Ids PatSnap treats as the same (``cn1`` / ``CN1``) share a key: the sha1 of endpoint, id kind,
        :func:`match_key` of the patent and parameters, joined by ``\\x1f``."""
        return hashlib.sha1(f"{self._key_head}{match_key(patent)}{self._key_tail}".encode()).hexdigest()

    def keys(self, patents: Iterable[str]) -> dict[str, str]:
        """Patent → :meth:`key`, to compute each key once per write."""
        return {patent: self.key(patent) for patent in patents}

    def spellings(self, cursor: Any, values: ValueList, keys: Mapping[str, str]) -> dict[str, str]:
        """How the table's rows spell each patent of ``keys`` (:meth:`keys`), as the last batch that
        fetched it recorded: requested patent → spelling, for the patents this table has state for."""
        stored: dict[str, str] = {}
        for condition, parameters in values.chunks(STATE_KEY, sorted(set(keys.values()))):
            cursor.execute(f"SELECT {STATE_KEY}, patent FROM {self.table} WHERE {condition}", parameters)
            stored.update((str(key), str(spelling)) for key, spelling in cursor.fetchall())
        return {patent: stored[key] for patent, key in keys.items() if key in stored}

    def rows(
        self,
        batch: FetchedBatch,
        spellings: Mapping[str, str] | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> list[tuple[Any, ...]]:
        """The batch's state rows as value tuples in column order, sorted by key (the lock order).

        A patent with data is recorded in the spelling PatSnap echoed (the one its rows hold); one without
        keeps the spelling in ``spellings`` (:meth:`spellings`), as its rows may still be in the table.
        ``keys``: the batch's :meth:`keys`, if already computed."""
        spellings = spellings or {}
        keys = keys or self.keys(patent.requested for patent in batch.patents)
        by_key = {
            key: (  # in STATE_COLUMNS order
                key,
                self.endpoint,
                self.id_kind,
                patent.echoed or spellings.get(patent.requested, patent.requested),
                self.params,
                int(patent.echoed is not None),
                patent.rows,
                batch.fetched_at,
            )
            for key, patent in ((keys[patent.requested], patent) for patent in batch.patents)
        }
        return [row for _, row in sorted(by_key.items())]

    def fresh_in(self, conn_id: str, patents: Sequence[str], since: str) -> Fresh:
        """:meth:`fresh` through the database connection ``conn_id``, creating nothing: a table that
        does not exist yet has nothing fresh."""
        from airflow_provider_patsnap._compat import BaseHook
        from airflow_provider_patsnap.sinks.sql_tables import TableKeeper

        hook = BaseHook.get_connection(conn_id).get_hook()
        keeper = TableKeeper(hook)
        try:
            return self.fresh(hook, patents, since) if keeper.exists(self.table) else Fresh(frozenset(), 0)
        finally:
            keeper.dispose()

    def fresh(self, hook: Any, patents: Sequence[str], since: str) -> Fresh:
        """The ``patents`` fetched after ``since`` (ISO 8601 UTC), read through ``hook``."""
        wanted: dict[str, list[str]] = {}
        for patent in patents:
            wanted.setdefault(self.key(patent), []).append(patent)
        found: dict[str, int] = {}
        values = ValueList(hook.placeholder, arrays=hook.dialect_name == "postgresql")
        for condition, parameters in values.chunks(STATE_KEY, list(wanted)):
            records = hook.get_records(
                f"SELECT {STATE_KEY}, found FROM {self.table} "
                f"WHERE fetched_at > {hook.placeholder} AND {condition}",
                parameters=[since, *parameters],
            )
            found.update((str(key), int(has_data)) for key, has_data in records)
        # Ids PatSnap treats as the same are requested (and billed) once: one unit per key.
        return Fresh(frozenset(patent for key in found for patent in wanted[key]), sum(found.values()))
