"""What a PatSnap task tells the people watching it: metrics through Airflow's ``Stats``, progress lines in
the task log, and the summary as a block a person can read.

Every metric name is here (docs/observability.md lists them). They go through the ``Stats`` client Airflow
configured for the deployment (StatsD, Datadog, OpenTelemetry, or nothing): this provider sets nothing up.
Names are under ``patsnap.``; each carries the tags ``endpoint``, ``dag_id`` and ``task_id`` where the
backend takes tags (plain StatsD drops them). A metrics backend that fails never fails a task.

Standard library only at import: ``Stats`` is imported when the first metric is sent.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import cache
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

CALLS = "patsnap.calls"  # HTTP exchanges sent to PatSnap (retries included)
CALL_DURATION = "patsnap.call_duration"  # timer: one exchange, request to body read
RETRIES = "patsnap.retries"  # exchanges repeated after a transient failure
RATE_LIMITED = "patsnap.rate_limited"  # answers saying the client called faster than its QPS
ERRORS = "patsnap.errors"  # exchanges that failed, tagged error_class
BILLED_UNITS = "patsnap.billed_units"  # patents in answers received (what PatSnap bills)
BILLED_UNITS_UNKNOWN = "patsnap.billed_units_unknown"  # patents of calls whose answer was lost after sending
PATENTS_REQUESTED = "patsnap.patents_requested"  # ids a data task was given
PATENTS_SKIPPED_FRESH = "patsnap.patents_skipped_fresh"  # ids skipped as fetched recently (refresh_after)
ROWS_WRITTEN = "patsnap.rows_written"  # rows landed in the destination
REJECTS = "patsnap.rejects"  # vendor records kept as rejects
REPORT_CREATED = "patsnap.report.created"  # value report jobs created (each one is paid)
REPORT_WAIT_DURATION = "patsnap.report.wait_duration"  # timer: from the first status check to done

METRIC_NAMES = (
    CALLS,
    CALL_DURATION,
    RETRIES,
    RATE_LIMITED,
    ERRORS,
    BILLED_UNITS,
    BILLED_UNITS_UNKNOWN,
    PATENTS_REQUESTED,
    PATENTS_SKIPPED_FRESH,
    ROWS_WRITTEN,
    REJECTS,
    REPORT_CREATED,
    REPORT_WAIT_DURATION,
)


@cache
def _stats() -> Any:
    """Airflow's ``Stats``: ``airflow.sdk.observability`` on Airflow 3, ``airflow.stats`` before."""
    try:
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # Airflow 2.11-3.2
        from airflow.stats import Stats  # type: ignore[no-redef]
    return Stats


class Metrics:
    """Sends this provider's metrics with a set of tags; never raises (the first failure is logged)."""

    def __init__(self, **tags: str) -> None:
        self.tags = {name: value for name, value in tags.items() if value}
        self._failed = False

    def tagged(self, **tags: str) -> Metrics:
        """These metrics with more tags (empty values are left out)."""
        return Metrics(**{**self.tags, **tags})

    def _send(self, method: str, name: str, value: Any, tags: Mapping[str, str]) -> None:
        try:
            getattr(_stats(), method)(name, value, tags={**self.tags, **tags} if tags else self.tags)
        except Exception as error:  # a metrics backend must never fail a paid run
            if not self._failed:
                self._failed = True
                log.warning("Sending metric %s failed (further failures are not logged): %s", name, error)

    def incr(self, name: str, count: int = 1, **tags: str) -> None:
        if count:
            self._send("incr", name, count, tags)

    def timing(self, name: str, seconds: float, **tags: str) -> None:
        self._send("timing", name, timedelta(seconds=seconds), tags)


class Progress(NamedTuple):
    """A data task's counts at one moment, for a progress line."""

    batches: int  # batches landed
    patents: int  # ids of those batches
    rows: int
    rejects: int
    billed: int
    billed_unknown: int
    calls: int
    retries: int
    rate_limited: int


class RunProgress:
    """Progress lines of one data task: a start line, then a line at most every ``interval`` seconds and
    at every tenth of the batches, whichever comes first, and a final line. ``clock`` is seconds
    (monotonic); tests give a fake one."""

    def __init__(
        self,
        logger: Any,
        what: str,
        *,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = logger
        self.what = what
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._started = self._last = clock()
        self._total_batches = self._total_patents = 0
        self._limit = 0.0  # patents/s the QPS allows; 0: no limit
        self._next_tenth = 1

    def start(self, *, requested: int, fresh: int, qps: float) -> None:
        """Log what the run will do: ids given, after the freshness filter, batches, QPS, expected time."""
        to_fetch = max(0, requested - fresh)
        self._total_patents = to_fetch
        self._total_batches = math.ceil(to_fetch / 100)
        self._limit = qps * 100
        expected = f"about {_duration(self._total_batches / qps)} at that QPS" if qps > 0 else "no QPS limit"
        self.log.info(
            "%s: %s patent(s) requested, %s after the freshness filter (%s skipped): %s batch(es) at "
            "qps=%g (%s patents/s at most); %s",
            self.what,
            f"{requested:,}",
            f"{to_fetch:,}",
            f"{fresh:,}",
            f"{self._total_batches:,}",
            qps,
            f"{self._limit:,.0f}" if qps > 0 else "unlimited",
            expected,
        )

    def update(self, progress: Progress) -> None:
        """Log a line if ``interval`` passed since the last one or a new tenth of the batches landed."""
        now = self.clock()
        with self._lock:
            tenth = (progress.batches * 10) // max(self._total_batches, 1)
            due = now - self._last >= self.interval or tenth >= self._next_tenth
            if not due or progress.batches >= self._total_batches:
                return  # the last batch gets the final line
            self._last = now
            self._next_tenth = tenth + 1
        self.log.info("%s", self.line(progress, now))

    def finish(self, progress: Progress) -> None:
        self.log.info("%s", self.line(progress, self.clock(), final=True))

    def line(self, progress: Progress, now: float, final: bool = False) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = progress.patents / elapsed
        share = f" ({rate / self._limit:.0%} of the {self._limit:,.0f} the QPS allows)" if self._limit else ""
        percent = progress.patents / self._total_patents if self._total_patents else 1.0
        left = self._total_patents - progress.patents
        eta = "done" if final else (f"ETA {_duration(left / rate)}" if rate > 0 else "ETA unknown")
        maybe = f" (+{progress.billed_unknown:,} maybe)" if progress.billed_unknown else ""
        return (
            f"{self.what}: {'finished' if final else 'progress'}: batches {progress.batches:,}/"
            f"{self._total_batches:,}, patents {progress.patents:,}/{self._total_patents:,} ({percent:.0%}), "
            f"rows {progress.rows:,}, rejects {progress.rejects:,}, billed {progress.billed:,}{maybe}, "
            f"calls {progress.calls:,}, retries {progress.retries:,}, rate-limited {progress.rate_limited:,}; "
            f"{rate:,.0f} patents/s{share}; {_duration(elapsed)} elapsed, {eta}"
        )


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def summary_block(title: str, summary: Mapping[str, Any]) -> str:
    """The summary a data task returns, as aligned lines for the task log (numbers with thousands
    separators); its XCom value stays the dict."""
    width = max(len(key) for key in summary)
    lines = [title]
    for key, value in summary.items():
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
        lines.append(f"  {key:<{width}}  {shown}")
    return "\n".join(lines)
