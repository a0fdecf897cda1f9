"""PatsnapReportTrigger: waits for a PatSnap value report job (R002) in the triggerer.

The trigger only polls: the job is created on the worker, never here (a triggerer restart replays
``run()``, and a replayed POST would pay for a second report).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_patsnap._compat import AirflowSensorTimeout
from airflow_provider_patsnap.endpoints import VALUE_REPORT
from airflow_provider_patsnap.exceptions import PatsnapError, PatsnapReportError, PatsnapTransientError
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook, job_id_text


def report_outcome(report: Mapping[str, Any]) -> str | None:
    """``success`` or ``failed`` for a finished job, ``None`` while it waits or exports."""
    if report["job_status"] == VALUE_REPORT.done:
        return "success"
    if report["job_status"] == VALUE_REPORT.failed:
        return "failed"
    return None


def failure_message(report: Mapping[str, Any]) -> str:
    cause = report.get("abnormal_cause") or "no cause given"
    return f"PatSnap report job {report['job_id']} failed: {cause}"


def report_from_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return the status payload of a ``success`` event; raise the matching error for any other."""
    status = event.get("status")
    if status == "success":
        return dict(event["report"])
    message = str(event.get("message") or f"unexpected trigger event {event!r}")
    if status == "failed":
        raise PatsnapReportError(message)
    if status == "timeout":
        raise AirflowSensorTimeout(message)
    raise PatsnapError(message)


class PatsnapReportTrigger(BaseTrigger):
    """
    Poll a PatSnap value report job until it is done, has failed, or the deadline passes.

    Yields exactly one event, ``{"status": ..., "job_id": ..., "message": ..., "report": ...}`` with
    status ``success`` (``report`` holds the status payload, with ``download_url``), ``failed``,
    ``timeout`` or ``error``. The hook's blocking calls run in a thread so the triggerer's event loop
    never waits on the network. The status is checked once more before a timeout is declared.

    :param job_id: The report job id, as a string of digits.
    :param end_time: Wall-clock deadline in seconds since the epoch (survives a triggerer restart).
    :param patsnap_conn_id: The Airflow connection id.
    :param poll_interval: Seconds between status checks.
    :param tolerated_errors: Consecutive transient poll failures tolerated before an ``error`` event.
    """

    def __init__(
        self,
        job_id: str,
        end_time: float,
        patsnap_conn_id: str = PatsnapHook.default_conn_name,
        poll_interval: float = 30.0,
        tolerated_errors: int = 3,
    ) -> None:
        super().__init__()
        self.job_id = job_id_text(job_id)
        self.end_time = float(end_time)
        self.patsnap_conn_id = patsnap_conn_id
        self.poll_interval = float(poll_interval)
        self.tolerated_errors = int(tolerated_errors)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "end_time": self.end_time,
                "patsnap_conn_id": self.patsnap_conn_id,
                "poll_interval": self.poll_interval,
                "tolerated_errors": self.tolerated_errors,
            },
        )

    def _event(self, status: str, message: str, report: Mapping[str, Any] | None = None) -> TriggerEvent:
        return TriggerEvent(
            {"status": status, "job_id": self.job_id, "message": message, "report": report and dict(report)}
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = PatsnapHook(self.patsnap_conn_id)
        try:
            async for event in self._poll(hook):
                yield event
                return
        finally:
            hook.close()  # the triggerer lives long: don't leave pooled sockets behind

    async def _poll(self, hook: PatsnapHook) -> AsyncIterator[TriggerEvent]:
        errors = 0
        while True:
            try:
                report = await asyncio.to_thread(hook.get_report_status, self.job_id)
            except PatsnapTransientError as err:
                errors += 1
                self.log.warning("Status check %d of job %s failed: %s", errors, self.job_id, err)
                if errors > self.tolerated_errors:
                    yield self._event("error", f"{errors} status checks in a row failed; last: {err}")
                    return
            except Exception as err:
                yield self._event("error", f"status check of job {self.job_id} failed: {err}")
                return
            else:
                errors = 0
                outcome = report_outcome(report)
                if outcome == "success":
                    yield self._event("success", f"PatSnap report job {self.job_id} is ready", report)
                    return
                if outcome == "failed":
                    yield self._event("failed", failure_message(report), report)
                    return
                self.log.info(
                    "Job %s: job_status=%s queue_num=%s",
                    self.job_id,
                    report["job_status"],
                    report.get("queue_num"),
                )
            remaining = self.end_time - time.time()
            if remaining <= 0:  # the check above came after the deadline: it was the last one
                yield self._event("timeout", f"PatSnap report job {self.job_id} not ready by the deadline")
                return
            await asyncio.sleep(min(self.poll_interval, remaining))


def wait_for_report(trigger: PatsnapReportTrigger) -> dict[str, Any]:
    """Run ``trigger`` in this thread (a worker that waits without deferring); return the report."""

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise PatsnapError(f"trigger for job {trigger.job_id} ended without an event")

    return report_from_event(asyncio.run(first_event()))
