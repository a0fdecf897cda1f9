"""The ids a run asks for: validated before any call, chunk by chunk, less the fresh, within the budget."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_patsnap.exceptions import InvalidPatentIdsError
from airflow_provider_patsnap.hooks._billing import BillingMeter
from airflow_provider_patsnap.id_sources import Shard
from airflow_provider_patsnap.ids import PatentIds
from airflow_provider_patsnap.operators._id_stream import IdStream, source_chunks
from airflow_provider_patsnap.sinks.base import FreshPatents
from tests.helpers import numbers


class ListedSource:
    """A source whose values are given, and which counts how often it was read."""

    reads_only_its_shard = False

    def __init__(self, values: list[Any], shard: Shard | None = None) -> None:
        self._values, self.shard, self.reads = values, shard, 0

    def values(self) -> Iterator[Any]:
        self.reads += 1
        yield from self._values

    def describe(self) -> str:
        return "the test's values"

    def spec(self) -> dict[str, Any]:
        return {}


def test_a_source_is_read_in_deduplicated_chunks_of_its_shard() -> None:
    values = [*numbers(2500), *numbers(10, start=100002490)]  # ten again, within the last chunk
    chunks = list(source_chunks(ListedSource(values), "patent_number", chunk=1000))
    assert [len(chunk) for chunk in chunks] == [1000, 1000, 500]
    across = [*numbers(1000), *numbers(10)]  # ten again, in the next chunk: asked for twice (documented)
    assert [len(chunk) for chunk in source_chunks(ListedSource(across), "patent_number", chunk=1000)] == [
        1000,
        10,
    ]
    sharded = [
        id_
        for number in range(3)
        for chunk in source_chunks(ListedSource(values, Shard(number, 3)), "patent_number")
        for id_ in chunk
    ]
    assert sorted(sharded) == sorted(numbers(2500))


def test_every_bad_value_of_a_stream_is_counted_before_anything_is_fetched() -> None:
    values = [*numbers(30), "CN 1A", "", *numbers(5, start=9), "a,b"] + ["x y"] * 6
    stream = IdStream("patent_number", None, ListedSource(values), None, BillingMeter())
    with pytest.raises(
        InvalidPatentIdsError, match=r"9 invalid patent_number value\(s\) in the test's values"
    ):
        stream.plan()


def test_a_list_is_planned_once_and_its_fresh_patents_are_skipped_without_asking_again() -> None:
    ids = PatentIds.of(numbers(250))
    asked: list[int] = []

    def fresh(chunk: PatentIds) -> FreshPatents:
        asked.append(len(chunk))
        return FreshPatents(frozenset(chunk.keys[:50]), 40)

    stream = IdStream("patent_number", ids, None, fresh, BillingMeter())
    plan = stream.plan()
    assert (plan.requested, plan.fresh, plan.fresh_with_data) == (250, 50, 40)
    assert [len(batch) for batch in stream.batches()] == [100, 100]
    assert asked == [250] and (stream.skipped_fresh, stream.billed_units_saved) == (50, 40)
    assert stream.exhausted() and stream.not_handed_out == 0


def test_a_source_checks_each_chunk_for_fresh_patents_as_it_is_fetched() -> None:
    source = ListedSource(numbers(25_000))
    stream = IdStream(
        "patent_number",
        None,
        source,
        lambda chunk: FreshPatents(frozenset(chunk.keys[:1]), 1),
        BillingMeter(),
    )
    assert stream.plan().requested == 25_000
    handed = sum(len(batch) for batch in stream.batches())
    assert (handed, stream.skipped_fresh, source.reads) == (25_000 - 3, 3, 2)  # three chunks, read twice


def test_no_batch_is_larger_than_the_budget_left() -> None:
    meter = BillingMeter(max_units=150)
    stream = IdStream("patent_number", PatentIds.of(numbers(400)), None, None, meter)
    stream.plan()
    batches = stream.batches()
    first = next(batches)
    meter.reserve(len(first))  # the call is on the wire
    second = next(batches)
    meter.reserve(len(second))
    assert (len(first), len(second)) == (100, 50)
    assert next(batches, None) is None and not stream.exhausted()
    assert stream.not_handed_out == 250


def test_handing_out_a_long_list_copies_each_id_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list of a million ids is handed out 100 at a time: slicing off the rest for every batch would
    copy the list ten thousand times."""
    copied: list[int] = []
    slice_of = PatentIds.__getitem__

    def counting(self: PatentIds, part: slice) -> PatentIds:
        taken = slice_of(self, part)
        copied.append(len(taken))
        return taken

    monkeypatch.setattr(PatentIds, "__getitem__", counting)
    ids = PatentIds.of(numbers(5000))
    stream = IdStream("patent_number", ids, None, None, BillingMeter())
    stream.plan()
    assert sum(len(batch) for batch in stream.batches()) == 5000
    assert stream.exhausted()
    assert sum(copied) == 5000
