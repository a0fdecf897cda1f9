"""One fetched batch → rows, rejects, and the patents it asked for (found or not) for the sink."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_patsnap.endpoints import Endpoint, IdKind, Reject, Row, patent_field, raw_json
from airflow_provider_patsnap.operators._outcome import RunTotals
from airflow_provider_patsnap.sinks.base import FetchedPatent

if TYPE_CHECKING:
    from airflow_provider_patsnap.ids import BatchResult


class MappedBatch(NamedTuple):
    """What a batch becomes for its sink."""

    rows: list[Row]
    rejects: list[Reject]
    patents: list[FetchedPatent]  # every requested patent, found or not


def map_batch(
    endpoint: Endpoint, result: BatchResult, kind: IdKind, totals: RunTotals, fetched_at: str, log: Any
) -> MappedBatch:
    """Rows, rejects and the fetched patents of one batch; only objects matching a requested id,
    each once, become rows."""
    match, requested = result.match, result.requested
    missing = result.missing
    totals.count_missing(missing)
    totals.duplicates += match.duplicates
    totals.unrequested += len(match.unrequested)
    if match.unrequested or match.duplicates:
        log.warning(
            "PatSnap %s returned %d object(s) for patents not requested (dropped, first: %s) and %d "
            "duplicate object(s) (one kept per patent)",
            endpoint.code,
            len(match.unrequested),
            [patent.get("pn") or patent.get("patent_id") for patent in match.unrequested[:3]],
            match.duplicates,
        )
    field_name = patent_field(kind)
    rejects = [
        Reject(
            endpoint.code,
            None,
            None,
            f"{endpoint.code} object without a usable {field_name}: cannot be matched to a requested patent",
            raw_json(patent),
        )
        for patent in match.unmatched
    ]
    # An object that names no patent may belong to any missing one: none of them is emptied.
    unmatched = bool(match.unmatched)
    patents = [
        FetchedPatent(requested.ids[position], requested.keys[position], None, 0, unmatched)
        for position in match.missing_at
    ]
    rows: list[Row] = []
    map_patent = endpoint.map_patent
    for patent, position in zip(match.matched, match.matched_at, strict=True):
        mapped = map_patent(patent, fetched_at)
        rows += mapped.rows
        rejects += mapped.rejects
        patents.append(
            FetchedPatent(
                requested.ids[position],
                requested.keys[position],
                patent[field_name],
                len(mapped.rows),
                bool(mapped.rejects),
            )
        )
    return MappedBatch(rows, rejects, patents)
