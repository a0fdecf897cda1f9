"""PatsnapReportSensor: waits for a PatSnap value report job (R002) to finish."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow_provider_patsnap._compat import (
    BaseSensorOperator,
    Context,
    conf_getboolean,
    retry_policy_kwargs,
    task_state,
)
from airflow_provider_patsnap.arguments import whole_number
from airflow_provider_patsnap.exceptions import PatsnapReportError, PatsnapTransientError
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.report import JobState, PollAction, decide, job_id_of, validate_trigger_event
from airflow_provider_patsnap.retry import DEFAULT_RETRY_POLICY
from airflow_provider_patsnap.triggers.patsnap import PatsnapReportTrigger

#: The task state key of the transient failures in a row: kept across pokes, which in ``reschedule``
#: mode each run in a new process.
ERRORS_KEY = "patsnap_report_poll_errors"


class PatsnapReportSensor(BaseSensorOperator):
    """
    Wait until a PatSnap value report job is done; return its status payload (``job_id``, ``job_status``,
    ``queue_num``, ``abnormal_cause``; never the presigned link: the download task fetches its own).

    Works in ``poke``, ``reschedule`` or deferrable mode. Fails with the job's ``abnormal_cause`` when
    the job fails, and with :class:`AirflowSensorTimeout` when ``timeout`` passes first. A few transient
    poll errors in a row are tolerated, counted across pokes in every mode (in ``reschedule`` mode through
    the task's state: Airflow 3.3's task state store, or an Airflow Variable before 3.3).

    :param job_id: The report job id (templated), as returned by
        :class:`~airflow_provider_patsnap.operators.report.PatsnapCreateValueReportOperator`, or its
        ``report_job`` XCom (an object holding ``job_id``).
    :param patsnap_conn_id: The Airflow connection id (templated).
    :param tolerated_errors: Transient poll failures in a row tolerated before the task fails.
    :param deferrable: Wait in the triggerer instead of a worker slot; defaults to Airflow's
        ``[operators] default_deferrable``.
    :param retry_policy: Airflow 3.3+: the default fails what no retry can fix and retries rate limits
        after PatSnap's ``Retry-After`` (:mod:`airflow_provider_patsnap.retry`); ``None`` opts out.
    """

    template_fields: Sequence[str] = ("job_id", "patsnap_conn_id")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        job_id: str | Mapping[str, Any],
        patsnap_conn_id: str = PatsnapHook.default_conn_name,
        tolerated_errors: int = 3,
        deferrable: bool = conf_getboolean("operators", "default_deferrable", fallback=False),
        retry_policy: Any = DEFAULT_RETRY_POLICY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**retry_policy_kwargs(retry_policy), **kwargs)
        whole_number("tolerated_errors", tolerated_errors)
        self.job_id = job_id
        self.patsnap_conn_id = patsnap_conn_id
        self.tolerated_errors = tolerated_errors
        self.deferrable = deferrable
        self._state: JobState | None = None

    @cached_property
    def hook(self) -> PatsnapHook:
        return PatsnapHook(self.patsnap_conn_id)

    def poke(self, context: Context) -> bool:
        stored = task_state(context)
        errors = int(stored.get(ERRORS_KEY, 0) or 0)
        try:
            polled: JobState | PatsnapTransientError = self.hook.get_report_state(job_id_of(self.job_id))
        except PatsnapTransientError as error:
            polled = error
        decision = decide(polled, errors, self.tolerated_errors)
        if decision.errors_in_a_row != errors:
            if decision.errors_in_a_row:
                stored.set(ERRORS_KEY, decision.errors_in_a_row)
            else:
                stored.delete(ERRORS_KEY)
        if decision.action is PollAction.GIVE_UP:
            stored.delete(ERRORS_KEY)
            assert isinstance(polled, PatsnapTransientError)
            raise polled
        if decision.action is PollAction.FAILED:
            raise PatsnapReportError(decision.message)
        if decision.action is PollAction.DONE:
            self._state = decision.state
            return True
        if isinstance(polled, PatsnapTransientError):
            self.log.warning("%s", decision.message)
        else:
            self.log.info("%s", decision.message)
        return False

    def _result(self) -> dict[str, Any] | None:
        return self._state.as_payload() if self._state else None

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            super().execute(context)
            return self._result()
        if self.poke(context):
            return self._result()
        self.defer(
            trigger=PatsnapReportTrigger(
                job_id=job_id_of(self.job_id),
                end_time=time.time() + self.timeout,
                patsnap_conn_id=self.patsnap_conn_id,
                poll_interval=self.poke_interval,
                tolerated_errors=self.tolerated_errors,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: return the status payload or raise the event's error."""
        return validate_trigger_event(event).as_payload()

    def on_kill(self) -> None:
        self.hook.cancel()
