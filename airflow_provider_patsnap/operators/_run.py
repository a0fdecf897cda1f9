"""One data task's run: batches fetched through the hook, mapped to rows, landed in the sink, counted,
reported as progress lines and metrics as they land."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_patsnap.endpoints import Endpoint, Reject, Row
from airflow_provider_patsnap.exceptions import PatsnapBudgetError
from airflow_provider_patsnap.observability import (
    BILLED_UNITS,
    BILLED_UNITS_UNKNOWN,
    PATENTS_REQUESTED,
    PATENTS_SKIPPED_FRESH,
    REJECTS,
    ROWS_WRITTEN,
    Metrics,
    Progress,
    RunProgress,
)
from airflow_provider_patsnap.operators._id_stream import IdStream
from airflow_provider_patsnap.operators._mapping import map_batch
from airflow_provider_patsnap.operators._outcome import RunTotals
from airflow_provider_patsnap.sinks.base import FetchedBatch, FetchedPatent, Sink
from airflow_provider_patsnap.sinks.runs import RunCounts, RunRecord

if TYPE_CHECKING:
    from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
    from airflow_provider_patsnap.ids import BatchResult

#: Most fetched batches landed in one write: the ones waiting when the destination is the bottleneck.
WRITE_GROUP = 16


class DataRun:
    """Fetches a stream's batches and lands them in a sink; ``now`` is the operators' clock (row times)."""

    def __init__(
        self,
        endpoint: Endpoint,
        hook: PatsnapHook,
        sink: Sink,
        stream: IdStream,
        totals: RunTotals,
        record: RunRecord,
        *,
        params: dict[str, Any],
        now: Callable[[], datetime],
        log: Any,
        progress_interval: float,
    ) -> None:
        self.endpoint = endpoint
        self.hook = hook
        self.sink = sink
        self.stream = stream
        self.totals = totals
        self._record = record
        self.params = params
        self.now = now
        self.log = log
        self.metrics: Metrics = hook.metrics.tagged(endpoint=endpoint.code)
        self.progress = RunProgress(log, f"PatSnap {endpoint.code}", interval=progress_interval)

    def run(self, requested: int, fresh: int) -> None:
        """Fetch and land every batch (or what the budget allows): ``totals`` says what happened, and the
        log and the metrics said it as it happened, a failed run's included."""
        self.metrics.incr(PATENTS_REQUESTED, requested)
        self.progress.start(requested=requested, fresh=fresh, qps=self.hook.settings.qps)
        try:
            self.totals.not_fetched = self._fetch()
        finally:
            stream, totals = self.stream, self.totals
            totals.skipped_fresh, totals.billed_units_saved = stream.skipped_fresh, stream.billed_units_saved
            self.metrics.incr(PATENTS_SKIPPED_FRESH, totals.skipped_fresh)
            self.metrics.incr(BILLED_UNITS_UNKNOWN, totals.meter.unknown)
            self.progress.finish(self.snapshot())

    def _fetch(self) -> int:
        """Fetch and land the stream's ids; with a budget, never ask for more patents than units are left
        (each patent returned is billed once) and count answers lost after sending as spent, so no retry
        goes past it. Return how many ids the budget left unfetched."""
        stream, meter = self.stream, self.totals.meter
        while True:
            groups = self.hook.stream_batches(
                self.endpoint,
                stream.batches(),
                stream.kind,
                params=self.params,
                meter=meter,
                max_group=WRITE_GROUP,
            )
            try:
                for results in groups:
                    self.land(results)
            except PatsnapBudgetError as reached:
                self.log.warning("%s", reached)
                return reached.not_fetched + stream.not_handed_out
            if stream.exhausted():
                return 0
            units_left = meter.units_left()
            if units_left is not None and units_left <= 0:
                return stream.not_handed_out

    def land(self, results: list[BatchResult]) -> None:
        """Write batches that arrived together in one write: a destination that cannot keep up writes
        fewer, larger transactions, and no batch ever waits for another to arrive."""
        totals = self.totals
        fetched_at = self.now().isoformat(timespec="seconds")
        rows: list[Row] = []
        rejects: list[Reject] = []
        patents: list[FetchedPatent] = []
        for result in results:
            mapped = map_batch(self.endpoint, result, self.stream.kind, totals, fetched_at, self.log)
            rows += mapped.rows
            rejects += mapped.rejects
            patents += mapped.patents
        billed = sum(len(result.patents) for result in results)
        totals.billed += billed  # billed whatever happens to the write
        totals.batches += len(results)
        totals.asked += sum(len(result.requested) for result in results)
        self.sink.record_run(self._counted(pending_rows=len(rows), pending_rejects=len(rejects)))
        kept = self.sink.write_batch(rows, rejects, FetchedBatch(patents, fetched_at))
        written = len(rows) - (len(kept) - len(rejects))  # less rows the destination refused
        totals.count_rejects(kept)
        totals.rows += written
        self.metrics.incr(BILLED_UNITS, billed)
        self.metrics.incr(ROWS_WRITTEN, written)
        self.metrics.incr(REJECTS, len(kept))
        self.progress.update(self.snapshot())

    def _counted(self, pending_rows: int = 0, pending_rejects: int = 0) -> RunRecord:
        """The run record with the counts so far, and the rows and rejects of a write about to land."""
        totals, stats, stream = self.totals, self.hook.stats, self.stream
        return self._record._replace(
            counts=RunCounts(
                requested=stream.requested,
                skipped_fresh=stream.skipped_fresh,
                found=totals.asked - totals.missing,
                rows_written=totals.rows + pending_rows,
                rows_removed=0,
                rejects=totals.rejects + pending_rejects,
                billed_units=totals.billed,
                billed_units_unknown=totals.meter.unknown,
                calls=stats.calls,
                retries=stats.retries,
            )
        )

    def record(self, error: BaseException | None) -> RunRecord:
        """The try's final record: ended now, a success unless ``error`` (a table adds its removals)."""
        counted = self._counted()
        return counted.finished(counted.counts, self.now(), error)

    def snapshot(self) -> Progress:
        totals, stats = self.totals, self.hook.stats
        return Progress(
            batches=totals.batches,
            patents=totals.asked,
            rows=totals.rows,
            rejects=totals.rejects,
            billed=totals.billed,
            billed_unknown=totals.meter.unknown,
            calls=stats.calls,
            retries=stats.retries,
            rate_limited=stats.rate_limited,
        )
