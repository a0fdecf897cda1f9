"""What one scale-out run did at the vendor, from the sandbox's own request records, and in the warehouse.

Throughput is measured where PatSnap would count it: the sandbox stamps each request with its arrival
(``RequestRecord.arrival``, its monotonic clock when the request had been read). The steady state is the
window between the arrivals that carry the run's 10 % and 90 % marks of patents answered (as
``benchmarks/throughput.py`` counts them), so neither the shards' start-up nor the last stragglers set
the figure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from airflow_provider_patsnap.endpoints import Endpoint
from airflow_provider_patsnap.sandbox import RequestRecord
from airflow_provider_patsnap.sandbox.data import patent_object

RATE_LIMIT_CODE = 67200002
IDS_PER_CALL = 100  # the vendor's most ids a call: QPS x 100 is the most patents a second
STEADY_MARKS = (0.1, 0.9)


@dataclass(frozen=True)
class Throughput:
    calls: int  # data calls answered with data
    patents: int  # the ids those calls asked for
    refused: int  # answers 67200002 (calling too fast), on any path
    other_errors: dict[str, int]  # any other error code on a business call, by code
    seconds: float  # the first to the last answered data call's arrival
    steady_seconds: float
    steady_rate: float  # patents a second between the steady marks
    busiest_second: int  # the most data calls that arrived within any one second

    def ratio(self, qps: float) -> float:
        return self.steady_rate / (qps * IDS_PER_CALL)

    def describe(self, qps: float) -> str:
        return (
            f"{self.steady_rate:.0f} patents/s = {self.ratio(qps):.3f} of the limit {qps * IDS_PER_CALL:.0f} "
            f"over a steady window of {self.steady_seconds:.1f} s ({self.patents} patents in {self.calls} "
            f"calls over {self.seconds:.1f} s; at most {self.busiest_second} calls arrived in one second)"
        )


def throughput(records: Iterable[RequestRecord], data_path: str) -> Throughput:
    """The run's figures from its request records (those of one run only)."""
    answered: list[tuple[float, int]] = []
    data_arrivals: list[float] = []
    refused = 0
    other: Counter[str] = Counter()
    for record in records:
        if record.error_code == RATE_LIMIT_CODE:
            refused += 1
        elif record.error_code:
            other[str(record.error_code)] += 1
        if record.path != data_path:
            continue
        data_arrivals.append(record.arrival)
        if record.http_status == 200 and not record.error_code:
            answered.append((record.arrival, len(record.ids)))
    answered.sort()
    total = sum(count for _, count in answered)
    steady_seconds = steady_rate = seconds = 0.0
    if answered:
        seconds = answered[-1][0] - answered[0][0]
        low_mark, high_mark = (fraction * total for fraction in STEADY_MARKS)
        done, low, high = 0, None, None
        for arrival, count in answered:
            done += count
            if low is None and done >= low_mark:
                low = (arrival, done)
            if high is None and done >= high_mark:
                high = (arrival, done)
        if low is not None and high is not None and high[0] > low[0]:
            steady_seconds = high[0] - low[0]
            steady_rate = (high[1] - low[1]) / steady_seconds
    return Throughput(
        calls=len(answered),
        patents=total,
        refused=refused,
        other_errors=dict(other),
        seconds=seconds,
        steady_seconds=steady_seconds,
        steady_rate=steady_rate,
        busiest_second=busiest_second(data_arrivals),
    )


def busiest_second(arrivals: Sequence[float]) -> int:
    """The most arrivals within any window of one second."""
    ordered = sorted(arrivals)
    most = start = 0
    for end, arrival in enumerate(ordered):
        while arrival - ordered[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


class IdsAsked(NamedTuple):
    asked: int  # ids in the answered data calls, repeats counted
    distinct: int
    missing: int  # portfolio ids no answered call asked for
    unexpected: int  # ids asked for that are not in the portfolio
    repeated: int  # ids asked for in more than one answered call

    @property
    def exactly_once(self) -> bool:
        return self.asked == self.distinct and not (self.missing or self.unexpected or self.repeated)


def ids_asked(records: Iterable[RequestRecord], data_path: str, portfolio: Sequence[str]) -> IdsAsked:
    """Whether each portfolio id was asked for in exactly one answered data call."""
    counts: Counter[str] = Counter()
    for record in records:
        if record.path == data_path and record.http_status == 200 and not record.error_code:
            counts.update(record.ids)
    wanted = set(portfolio)
    found = set(counts)
    return IdsAsked(
        asked=sum(counts.values()),
        distinct=len(found),
        missing=len(wanted - found),
        unexpected=len(found - wanted),
        repeated=sum(1 for count in counts.values() if count > 1),
    )


class RowComparison(NamedTuple):
    table: str
    expected: int
    found: int
    distinct: int
    missing: int
    unexpected: int
    differing: int  # rows whose key is expected but whose values are not the sandbox's

    @property
    def exact(self) -> bool:
        return (
            self.expected > 0
            and self.found == self.distinct == self.expected
            and not (self.missing or self.unexpected or self.differing)
        )

    def describe(self) -> str:
        return (
            f"{self.table}: {self.found}/{self.expected} rows (distinct keys {self.distinct}; missing "
            f"{self.missing}, unexpected {self.unexpected}, values differing from the sandbox's {self.differing})"
        )


def _canonical(values: Sequence[Any]) -> int:
    """A row's values (without its ``fetched_at``) as one hash: text for every non-NULL value."""
    return hash(tuple(None if value is None else str(value) for value in values))


def expected_rows(endpoint: Endpoint, patents: Iterable[str]) -> dict[str, int]:
    """record_key -> the hash of the row's values, for every row the sandbox's data makes for ``patents``."""
    rows: dict[str, int] = {}
    for pn in patents:
        patent = patent_object(endpoint.code, "patent_number", pn, "en")  # type: ignore[arg-type]
        if patent is not None:
            for row in endpoint.map_patent(patent, "").rows:
                rows[str(row[0])] = _canonical(row[:-1])
    return rows


def compare_rows(
    table: str, found_rows: Iterable[Sequence[Any]], expected: Mapping[str, int]
) -> RowComparison:
    """``found_rows``: the table's rows, the endpoint's columns in order without ``fetched_at``."""
    found = 0
    keys: dict[str, int] = {}
    for row in found_rows:
        found += 1
        keys[str(row[0])] = _canonical(row)
    differing = sum(1 for key, digest in keys.items() if key in expected and expected[key] != digest)
    return RowComparison(
        table=table,
        expected=len(expected),
        found=found,
        distinct=len(keys),
        missing=sum(1 for key in expected if key not in keys),
        unexpected=sum(1 for key in keys if key not in expected),
        differing=differing,
    )
