"""The ids a data task asks PatSnap for, batch by batch: from its list or its source, less what is fresh,
within its budget.

A run reads its ids twice. The first pass validates every id before any paid call (a bad value is named,
and nothing is asked for) and counts them, for the summary and the progress lines. The second pass hands
batches to the hook as calls can start: chunk by chunk from a source (never the whole stream in memory),
each chunk's fresh patents dropped (``refresh_after``), no batch larger than the units the budget has
left. A list is validated and de-duplicated whole, as it is in memory anyway; a source is de-duplicated
within each chunk only (docs/performance.md: ask for ``DISTINCT``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from airflow_provider_patsnap.endpoints import MAX_BATCH, IdKind
from airflow_provider_patsnap.exceptions import InvalidPatentIdsError
from airflow_provider_patsnap.hooks._billing import BillingMeter
from airflow_provider_patsnap.id_sources import IdSource
from airflow_provider_patsnap.ids import PatentIds, id_problem, match_key
from airflow_provider_patsnap.sinks.base import NOTHING_FRESH, FreshPatents

#: Ids of a source read, validated and filtered together: what a run holds of a stream at a time.
CHUNK = 10_000
_SHOWN = 5

FreshFilter = Callable[[PatentIds], FreshPatents]


def source_chunks(source: IdSource, kind: IdKind, chunk: int = CHUNK) -> Iterator[PatentIds]:
    """The source's ids in its shard, validated, ``chunk`` at a time, each chunk de-duplicated; raise
    :class:`InvalidPatentIdsError` naming the first bad values, once the stream was read to its end (so
    the message counts them all)."""
    shard = None if source.reads_only_its_shard else source.shard
    problems: list[str] = []
    count = 0
    pending: dict[str, str] = {}
    for position, value in enumerate(source.values()):
        problem = id_problem(value)
        if problem:
            count += 1
            if len(problems) < _SHOWN:
                problems.append(f"#{position}: {problem}")
            continue
        text = value.strip()
        key = match_key(text)
        if shard is not None and not shard.holds(key):
            continue
        pending.setdefault(key, text)
        if len(pending) >= chunk and not count:
            yield PatentIds(list(pending.values()), list(pending))
            pending = {}
    if count:
        more = f" (and {count - len(problems)} more)" if count > len(problems) else ""
        raise InvalidPatentIdsError(
            f"{count} invalid {kind} value(s) in {source.describe()}: {'; '.join(problems)}{more}"
        )
    if pending:
        yield PatentIds(list(pending.values()), list(pending))


class Plan(NamedTuple):
    """What the first pass found: the ids a run has, and how many of them are fresh."""

    requested: int
    fresh: int  # fetched recently enough not to be asked for again
    fresh_with_data: int  # of them, how many had data: the billed units skipping them saves


class IdStream:
    """The batches a run asks for. ``ids`` is a validated list, or None with a ``source``. ``fresh``
    tells which of some ids were fetched recently (None: nothing is fresh). Its counts are read by the
    task's thread while the hook's dispatcher thread pulls :meth:`batches`."""

    def __init__(
        self,
        kind: IdKind,
        ids: PatentIds | None,
        source: IdSource | None,
        fresh: FreshFilter | None,
        meter: BillingMeter,
    ) -> None:
        self.kind = kind
        self._ids = ids
        self._source = source
        self._fresh = fresh
        self._meter = meter
        self._lock = threading.Lock()
        self.requested = 0  # ids the run has (counted by plan())
        self.skipped_fresh = 0
        self.billed_units_saved = 0
        self.handed_out = 0  # ids in batches handed to the hook
        # The chunk being handed out, and how far: slicing off what is left would copy a list of a
        # million ids for every batch of 100.
        self._held = PatentIds([], [])
        self._held_at = 0
        self._chunks: Iterator[PatentIds] | None = None
        self._list_fresh = NOTHING_FRESH  # a list's fresh patents, found once by plan()

    def _all_chunks(self) -> Iterable[PatentIds]:
        if self._ids is not None:
            return [self._ids]
        assert self._source is not None
        return source_chunks(self._source, self.kind)

    def plan(self) -> Plan:
        """The first pass: validate every id (raising before any call), count them and the fresh ones.
        A list's fresh patents are kept; a source's chunks are checked again as they are fetched."""
        requested = fresh = with_data = 0
        for chunk in self._all_chunks():
            requested += len(chunk)
            if self._fresh is not None:
                found = self._fresh(chunk)
                fresh += len(found.keys)
                with_data += found.with_data
                if self._ids is not None:
                    self._list_fresh = found
        self.requested = requested
        return Plan(requested, fresh, with_data)

    def _filtered(self) -> Iterator[PatentIds]:
        for chunk in self._all_chunks():
            if self._fresh is None:
                fresh = NOTHING_FRESH
            elif self._ids is not None:
                fresh = self._list_fresh
            else:
                fresh = self._fresh(chunk)
            kept = chunk.without(fresh.keys) if fresh.keys else chunk
            with self._lock:
                self.skipped_fresh += len(chunk) - len(kept)
                self.billed_units_saved += fresh.with_data
            if len(kept):
                yield kept

    def batches(self) -> Iterator[PatentIds]:
        """Batches of at most 100, none larger than the budget's units left; ends when the ids run out
        (:meth:`exhausted`), or when the budget has no unit left now (call again once units come back:
        an answer with patents missing bills less than its call reserved)."""
        if self._chunks is None:
            self._chunks = self._filtered()
        while True:
            if not self._held_left():
                chunk = next(self._chunks, None)
                if chunk is None:
                    return
                self._held, self._held_at = chunk, 0
            units_left = self._meter.units_left()
            size = MAX_BATCH if units_left is None else min(MAX_BATCH, units_left)
            if size <= 0:
                return
            start = self._held_at
            batch = self._held[start : start + size]
            self._held_at = start + len(batch)
            with self._lock:
                self.handed_out += len(batch)
            yield batch

    def exhausted(self) -> bool:
        """Every id was handed out or skipped as fresh."""
        if self._chunks is None:
            return False
        if self._held_left():
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            return True
        self._held, self._held_at = chunk, 0
        return False

    def _held_left(self) -> int:
        return len(self._held) - self._held_at

    @property
    def not_handed_out(self) -> int:
        """Ids of the run neither handed out nor skipped as fresh: what a budget stop left unasked."""
        return max(0, self.requested - self.skipped_fresh - self.handed_out)
