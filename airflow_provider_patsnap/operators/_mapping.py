"""One fetched batch → rows, rejects, and the patents it asked for (found or not) for the sink."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_patsnap.endpoints import Endpoint, IdKind, Record, Reject, raw_json
from airflow_provider_patsnap.operators._outcome import Tally
from airflow_provider_patsnap.sinks.base import FetchedPatent

if TYPE_CHECKING:
    from airflow_provider_patsnap.ids import BatchResult


def map_batch(
    endpoint: Endpoint, result: BatchResult, kind: IdKind, tally: Tally, fetched_at: str, log: Any
) -> tuple[list[Record], list[Reject], list[FetchedPatent]]:
    """Rows, rejects and the fetched patents of one batch; only objects matching a requested id,
    each once, become rows."""
    match = result.match
    tally.count_missing(match.missing)
    tally.duplicates += match.duplicates
    tally.unrequested += len(match.unrequested)
    if match.unrequested or match.duplicates:
        log.warning(
            "PatSnap %s returned %d object(s) for patents not requested (dropped, first: %s) and %d "
            "duplicate object(s) (one kept per patent)",
            endpoint.code,
            len(match.unrequested),
            [patent.get("pn") or patent.get("patent_id") for patent in match.unrequested[:3]],
            match.duplicates,
        )
    field_name = "patent_id" if kind == "patent_id" else "pn"
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
    patents = [FetchedPatent(value, None, 0, bool(match.unmatched)) for value in match.missing]
    rows: list[Record] = []
    map_patent = endpoint.map_patent
    for patent, requested in zip(match.matched, match.matched_requested, strict=True):
        mapped = map_patent(patent, fetched_at)
        rows += mapped.rows
        rejects += mapped.rejects
        patents.append(FetchedPatent(requested, patent[field_name], len(mapped.rows), bool(mapped.rejects)))
    return rows, rejects, patents
