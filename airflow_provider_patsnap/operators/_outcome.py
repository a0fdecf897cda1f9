"""What a data task counted, the summary it returns, and the errors it ends with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_patsnap.endpoints import MAX_BATCH, Endpoint, Reject, ShapeReject
from airflow_provider_patsnap.exceptions import PatsnapRejectsError
from airflow_provider_patsnap.hooks._billing import BillingMeter
from airflow_provider_patsnap.sinks.base import LastingDestination, Sink, WriteCounts

if TYPE_CHECKING:
    from airflow_provider_patsnap.operators._id_stream import Plan

MISSING_SHOWN = 10
REJECTS_SHOWN = 5


@dataclass
class RunTotals:
    """What a data task's run has counted so far, across batches."""

    rows: int = 0
    billed: int = 0
    batches: int = 0  # batches landed
    asked: int = 0  # ids of those batches
    missing: int = 0
    rejects: int = 0
    unrequested: int = 0
    duplicates: int = 0
    skipped_fresh: int = 0
    billed_units_saved: int = 0
    not_fetched: int = 0
    meter: BillingMeter = field(default_factory=BillingMeter)  # replaced when the run has a budget
    shape_rejects: int = 0
    missing_shown: list[str] = field(default_factory=list)
    rejects_shown: list[str] = field(default_factory=list)
    shape_patents_shown: list[str] = field(default_factory=list)

    def count_rejects(self, rejects: list[Reject]) -> None:
        self.rejects += len(rejects)
        self.rejects_shown.extend(
            reject.reason for reject in rejects[: REJECTS_SHOWN - len(self.rejects_shown)]
        )
        shapes = [reject for reject in rejects if isinstance(reject, ShapeReject)]
        self.shape_rejects += len(shapes)
        self.shape_patents_shown.extend(
            str(reject.pn or reject.patent_id)
            for reject in shapes[: REJECTS_SHOWN - len(self.shape_patents_shown)]
        )

    def count_missing(self, missing: list[str]) -> None:
        self.missing += len(missing)
        self.missing_shown.extend(missing[: MISSING_SHOWN - len(self.missing_shown)])

    def log_findings(self, log: Any, endpoint: Endpoint, sink: Sink) -> None:
        """Warn about patents without data and about rejects, whether or not they fail the task."""
        if self.missing:
            log.warning(
                "%d patent(s) had no %s data, first: %s", self.missing, endpoint.code, self.missing_shown
            )
        if self.rejects:
            log.warning(
                "%d record(s) rejected, kept in %s; first reasons: %s",
                self.rejects,
                sink.rejects_location,
                self.rejects_shown,
            )

    def unknown_shape_error(self, endpoint: Endpoint, sink: Sink) -> PatsnapRejectsError:
        """Payloads of a shape the mapping does not know: an error however few (every later answer of
        that shape would be lost the same way), raised once the rest has landed."""
        return PatsnapRejectsError(
            f"PatSnap {endpoint.code} sent {endpoint.payload_key} in a shape the mapping does not know for "
            f"{self.shape_rejects} patent(s), first: {self.shape_patents_shown}. Their raw values are in "
            f"{sink.rejects_location} and every other row was written to {sink.location}; report the shape "
            "(the rejects' reason says what was expected)"
        )

    def too_many_rejects_error(self, endpoint: Endpoint, sink: Sink, max_rejects: int) -> PatsnapRejectsError:
        return PatsnapRejectsError(
            f"{self.rejects} {endpoint.code} record(s) rejected, more than max_rejects={max_rejects}; every "
            f"other row was written to {sink.location} and the rejects, with their reasons and raw values, "
            f"to {sink.rejects_location}. First: {self.rejects_shown}"
        )


def summary(
    endpoint: str,
    requested: int,
    totals: RunTotals,
    sink: Sink,
    table: LastingDestination | None,
    hook: Any,
) -> dict[str, Any]:
    """The small dict a data task returns (to XCom) when rows go to a table or a file."""
    fetched = requested - totals.skipped_fresh - totals.not_fetched
    counts = table.counts if table is not None else WriteCounts()
    return {
        "endpoint": endpoint,
        "write_mode": table.write_mode if table is not None else None,
        "requested": requested,
        "skipped_fresh": totals.skipped_fresh,
        "not_fetched": totals.not_fetched,
        "found": fetched - totals.missing,
        "missing": totals.missing,
        "rows": totals.rows,
        "rejects": totals.rejects,
        "unrequested": totals.unrequested,
        "duplicates": totals.duplicates,
        "billed_units": totals.billed,
        "billed_units_unknown": totals.meter.unknown,
        "billed_units_saved": totals.billed_units_saved,
        "calls": hook.stats.calls,
        "retries": hook.stats.retries,
        "write_retries": table.write_retries if table is not None else 0,
        "rows_removed": counts.rows_removed,
        "patents_emptied": counts.patents_emptied,
        "versions_opened": counts.versions_opened,
        "versions_closed": counts.versions_closed,
        "destination": sink.location,
        "rejects_destination": sink.rejects_location,
    }


def estimate_summary(endpoint: str, plan: Plan, max_billed_units: int | None) -> dict[str, Any]:
    """What ``estimate_only=True`` returns: what a run would request after the freshness filter."""
    would = plan.requested - plan.fresh
    return {
        "endpoint": endpoint,
        "estimate_only": True,
        "requested": plan.requested,
        "skipped_fresh": plan.fresh,
        "billed_units_saved": plan.fresh_with_data,
        "would_request": would,
        "calls_at_least": -(-would // MAX_BATCH),
        "billed_units_at_most": would,
        "max_billed_units": max_billed_units,
    }
