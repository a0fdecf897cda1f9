"""Waiting for a value report job (R002) on the calling thread: the loop behind ``wait_for_report``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_patsnap._compat import AirflowSensorTimeout
from airflow_provider_patsnap.exceptions import PatsnapReportError, PatsnapTransientError
from airflow_provider_patsnap.hooks._cancel import Cancellation
from airflow_provider_patsnap.report import JobId, JobState, ReportStatus


def poll_until_finished(
    get_state: Callable[[JobId], JobState],
    job_id: JobId,
    *,
    poll_interval: float,
    timeout: float,
    tolerated_errors: int,
    cancellation: Cancellation,
    log: Any,
) -> JobState:
    """Poll ``get_state`` until the job is done (its state) or failed (raise); :class:`AirflowSensorTimeout`
    when ``timeout`` seconds pass first, after one last check. Waits read ``cancellation``'s clock and end
    when it is cancelled; up to ``tolerated_errors`` transient failures in a row are logged and waited out.
    """
    clock = cancellation.clock
    give_up_at = clock.monotonic() + timeout
    errors = 0
    while True:
        try:
            state = get_state(job_id)
        except PatsnapTransientError as err:
            errors += 1
            if errors > tolerated_errors:
                raise
            log.warning("Status check %d of job %s failed: %s", errors, job_id, err)
        else:
            errors = 0
            if state.status is ReportStatus.DONE:
                return state
            if state.status is ReportStatus.FAILED:
                raise PatsnapReportError(state.failure_message())
            log.info("Job %s: job_status=%s", job_id, state.status.name)
        left = give_up_at - clock.monotonic()
        if left <= 0:
            raise AirflowSensorTimeout(f"PatSnap report job {job_id} not ready within {timeout:g} s")
        cancellation.sleep(min(poll_interval, left))
