"""PatsnapReportTrigger: waits for a PatSnap value report job (R002) in the triggerer.

The trigger only polls: the job is created on the worker, never here (a triggerer restart replays
``run()``, and a replayed POST would pay for a second report).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_patsnap.arguments import seconds, whole_number
from airflow_provider_patsnap.exceptions import PatsnapTransientError
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.report import JobId, JobState, PollAction, TriggerStatus, decide, trigger_event


class PatsnapReportTrigger(BaseTrigger):
    """
    Poll a PatSnap value report job until it is done, has failed, or the deadline passes.

    Yields exactly one event, ``{"status": ..., "job_id": ..., "message": ..., "report": ...}`` with
    status ``success`` (``report`` holds the status payload), ``failed``, ``timeout`` or ``error``. Each
    status call runs on this trigger's own thread (never the triggerer's shared executor) and is bounded
    by the connection's timeout; cancelling the trigger closes its connections, which ends a call in
    flight, and a cancel while the connection is still being read (a slow secrets backend) stops the
    call before anything is sent. The status is checked once more before a timeout is declared.

    On Airflow 3.3, :meth:`on_kill` runs when a user marks the deferred task failed or success, or
    clears it: polling stops at once, with no further status call.

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
        self.job_id = JobId.parse(job_id)
        self.end_time = seconds("end_time", end_time)  # since the epoch; a past one means one last check
        self.patsnap_conn_id = patsnap_conn_id
        self.poll_interval = seconds("poll_interval", poll_interval)
        self.tolerated_errors = whole_number("tolerated_errors", tolerated_errors)
        # What a run uses, for on_kill to stop (never serialized: a resumed trigger starts afresh).
        self._hook: PatsnapHook | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._killed: asyncio.Event | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": str(self.job_id),
                "end_time": self.end_time,
                "patsnap_conn_id": self.patsnap_conn_id,
                "poll_interval": self.poll_interval,
                "tolerated_errors": self.tolerated_errors,
            },
        )

    def _event(self, status: TriggerStatus, message: str, state: JobState | None = None) -> TriggerEvent:
        return TriggerEvent(trigger_event(status, self.job_id, message, state))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self._killed = asyncio.Event()
        hook = self._hook = PatsnapHook(self.patsnap_conn_id)
        executor = self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"patsnap-report-{self.job_id}")
        try:
            async for event in self._poll(hook, executor):
                yield event
                return
        finally:
            self._stop()

    async def on_kill(self) -> None:
        """Airflow 3.3 calls this when a user marks the deferred task failed or success, or clears it
        (never on a triggerer restart or a timeout): stop polling at once. No further status call starts,
        a call in flight is cut, the thread ends. PatSnap offers no call to cancel a report job, so the
        job itself goes on (it was paid for when it was created). Before 3.3 the cancel alone does the
        same, through :meth:`run`'s own cleanup."""
        if self._killed is not None:
            self._killed.set()
        self._stop()

    def _stop(self) -> None:
        """No new call, the one in flight cut (it fails at once on its closed socket), the thread let go."""
        if self._hook is not None:
            self._hook.cancel()
            self._hook.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def killed(self) -> bool:
        return self._killed is not None and self._killed.is_set()

    async def _poll(self, hook: PatsnapHook, executor: ThreadPoolExecutor) -> AsyncIterator[TriggerEvent]:
        loop = asyncio.get_running_loop()
        errors = 0
        while not self.killed:
            try:
                polled: JobState | PatsnapTransientError = await loop.run_in_executor(
                    executor, hook.get_report_state, self.job_id
                )
            except PatsnapTransientError as error:
                polled = error
            except Exception as error:
                if self.killed:  # the call on_kill cut: the task is gone, nobody waits for an event
                    return
                yield self._event("error", f"status check of job {self.job_id} failed: {error}")
                return
            if self.killed:
                return
            decision = decide(polled, errors, self.tolerated_errors)
            errors = decision.errors_in_a_row
            if decision.action is PollAction.DONE:
                yield self._event("success", decision.message, decision.state)
                return
            if decision.action is PollAction.FAILED:
                yield self._event("failed", decision.message, decision.state)
                return
            if decision.action is PollAction.GIVE_UP:
                yield self._event("error", decision.message)
                return
            if isinstance(polled, PatsnapTransientError):
                self.log.warning("%s", decision.message)
            else:
                self.log.info("%s", decision.message)
            remaining = self.end_time - time.time()
            if remaining <= 0:  # the check above came after the deadline: it was the last one
                yield self._event("timeout", f"PatSnap report job {self.job_id} not ready by the deadline")
                return
            await self._pause(min(self.poll_interval, remaining))

    async def _pause(self, seconds: float) -> None:
        """Wait between checks; ``on_kill`` ends the wait at once."""
        assert self._killed is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._killed.wait(), seconds)
