"""The patent value report (R002) domain: every rule about a report job, in one place.

A job is created once (paid), then polled until it is done (a presigned file link) or failed. Job ids are
19-digit integers that a float would corrupt: they are parsed once, where they enter (an API answer, an
operator argument, a trigger event), into a :class:`JobId` and stay text. Statuses are a
:class:`ReportStatus`; a status PatSnap never documented is an error, never "finished". What a poll's
answer means (done, failed, wait, give up after too many transient failures) is :func:`decide`, which
the hook's wait, the sensor and the trigger all call; they only do the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import Enum, IntEnum
from typing import Any, Literal, NamedTuple

from airflow_provider_patsnap.arguments import seconds, whole_number
from airflow_provider_patsnap.exceptions import (
    PatsnapError,
    PatsnapInputError,
    PatsnapReportError,
    PatsnapTransientError,
)
from airflow_provider_patsnap.ids import normalise_ids

CREATE_PATH = "/patent-valuation-data/patent-report/task/create-no-logo"
STATUS_PATH = "/patent-valuation-data/patent-report/job_id/status"
REPORT_TYPES: tuple[str, ...] = ("pdf", "word")

#: A status as text: ASCII digits, with the ``.0`` a JSON float leaves (``str.isdigit`` would take "٢").
_STATUS_TEXT = re.compile(r"\s*([0-9]{1,18})(?:\.0+)?\s*", re.ASCII)


class ReportStatus(IntEnum):
    """``job_status`` as PatSnap documents it."""

    WAITING = 0
    EXPORTING = 1
    DONE = 2
    FAILED = 3

    @classmethod
    def parse(cls, value: Any, job_id: str) -> ReportStatus:
        """Read ``job_status``: an int, or ASCII digits as text (``"2"``, and ``"2.0"``, how a JSON float
        arrives); anything else (``"Infinity"``, ``"NaN"``, ``"2.7"``, non-ASCII digits) is an error."""
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and (digits := _STATUS_TEXT.fullmatch(value)):
            number = int(digits[1])
        else:
            raise PatsnapReportError(f"PatSnap report job {job_id} has an unreadable job_status {value!r}")
        try:
            return cls(number)
        except ValueError:
            raise PatsnapReportError(
                f"PatSnap report job {job_id} has job_status {value!r}, which PatSnap does not document "
                f"({', '.join(f'{status.value} {status.name.lower()}' for status in cls)}): "
                "check the job in PatSnap before creating another report"
            ) from None


ACTIVE_STATUSES = frozenset({ReportStatus.WAITING, ReportStatus.EXPORTING})
TERMINAL_STATUSES = frozenset({ReportStatus.DONE, ReportStatus.FAILED})


class JobId(str):
    """A report job id: digits only, kept as text end to end."""

    __slots__ = ()

    @classmethod
    def parse(cls, value: Any) -> JobId:
        """Accept an int or a string of digits; a float, a bool or anything else is refused."""
        if isinstance(value, JobId):
            return value
        text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
        if not (text.isascii() and text.isdigit()):
            raise PatsnapReportError(f"a report job_id must be an integer (as text), got {value!r}")
        return cls(text)


def job_id_of(value: Any) -> JobId:
    """A job id as a task is given it: itself (digits, an int), or a mapping holding ``job_id`` (the
    create task's ``report_job`` XCom, the sensor's status payload)."""
    return JobId.parse(value.get("job_id") if isinstance(value, Mapping) else value)


def report_job(job_id: JobId, patent: str, report_type: str) -> dict[str, str]:
    """The create task's ``report_job`` XCom: the job id inside an object, so Airflow 3.3's REST API and
    UI keep it text (a bare string of digits comes back from the API as a JSON number, which JavaScript
    rounds: 1579434053399036001 shows as 1579434053399036000)."""
    return {"job_id": str(job_id), "patent": patent, "report_type": report_type}


@dataclass(frozen=True)
class JobState:
    """One status answer about one job."""

    job_id: JobId
    status: ReportStatus
    queue_num: Any = None
    download_url: str | None = None
    abnormal_cause: str | None = None

    @classmethod
    def from_api(cls, data: Any, asked_for: JobId, scrub: Callable[[str], str] = str) -> JobState:
        """Read a status answer; it must be about ``asked_for``, with a documented status.

        Every message, and the vendor's ``abnormal_cause``, goes through ``scrub`` (the hook's): a
        credential the vendor echoes never reaches an error, a log line or XCom.
        """
        try:
            return cls._from_api(data, asked_for, scrub)
        except PatsnapReportError as error:
            raise PatsnapReportError(scrub(str(error))) from None

    @classmethod
    def _from_api(cls, data: Any, asked_for: JobId, scrub: Callable[[str], str]) -> JobState:
        if not isinstance(data, Mapping):  # scrubbed before it is cut short: no half a secret
            raise PatsnapReportError(
                f"PatSnap sent no status for report job {asked_for}: {scrub(str(data))[:200]}"
            )
        answered = JobId.parse(data.get("job_id", asked_for))
        if answered != asked_for:
            raise PatsnapReportError(
                f"PatSnap answered about report job {answered} when asked about job {asked_for}"
            )
        status = ReportStatus.parse(data.get("job_status"), asked_for)
        url = data.get("download_url")
        if status is ReportStatus.DONE and not (isinstance(url, str) and url.strip()):
            raise PatsnapReportError(f"PatSnap report job {asked_for} is done but sent no download_url")
        cause = data.get("abnormal_cause")
        return cls(
            asked_for,
            status,
            data.get("queue_num"),
            url or None,
            None if cause is None else scrub(str(cause)),
        )

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> JobState:
        """Read back :meth:`as_payload` (a trigger event, a sensor's XCom): without the link."""
        job_id = JobId.parse(payload.get("job_id"))
        return cls(
            job_id,
            ReportStatus.parse(payload.get("job_status"), job_id),
            payload.get("queue_num"),
            payload.get("download_url"),
            payload.get("abnormal_cause"),
        )

    def as_payload(self, *, with_link: bool = False) -> dict[str, Any]:
        """JSON-safe: ``job_id`` text, ``job_status`` an int. The presigned ``download_url`` lets anyone
        who holds it download the paid report for 7 days: it is left out (``None``) unless asked for,
        so it never reaches a trigger event, a log line or XCom."""
        payload = asdict(self)
        payload["job_id"], payload["job_status"] = str(self.job_id), int(self.status)
        del payload["status"]
        if not with_link:
            payload["download_url"] = None
        return payload

    def failure_message(self) -> str:
        return f"PatSnap report job {self.job_id} failed: {self.abnormal_cause or 'no cause given'}"


def created_job_id(data: Any, scrub: Callable[[str], str]) -> JobId:
    """The job id of a create answer; every message goes through ``scrub`` (it quotes the vendor)."""
    if not isinstance(data, Mapping):  # scrubbed before it is cut short: not even half a secret
        raise PatsnapError(f"PatSnap created a report job but sent no job_id: {scrub(str(data))[:200]}")
    try:
        return JobId.parse(data.get("job_id"))
    except PatsnapReportError as error:
        raise PatsnapReportError(scrub(str(error))) from None


def check_create_inputs(
    patent_number: Any, patent_id: Any, report_type: Any, *, templates_pending: bool = False
) -> None:
    """A create names one patent, by exactly one of number or id, as one valid id, and a known report
    type; ``templates_pending`` (a DAG being parsed) leaves a value still to be rendered for later."""

    def pending(value: Any) -> bool:
        return templates_pending and isinstance(value, str) and "{{" in value

    if bool(patent_number) == bool(patent_id):
        raise PatsnapInputError(
            f"give exactly one of patent_number or patent_id, got {patent_number!r} and {patent_id!r}"
        )
    if not pending(report_type) and report_type not in REPORT_TYPES:
        raise PatsnapInputError(f"report_type must be one of {REPORT_TYPES}, got {report_type!r}")
    for kind, value in (("patent_number", patent_number), ("patent_id", patent_id)):
        if value is None or pending(value):
            continue
        if not isinstance(value, str):
            raise PatsnapInputError(
                f"{kind} must be one id as a string, got {type(value).__name__} {value!r}"
            )
        if len(normalise_ids([value], kind)) != 1:  # type: ignore[arg-type]
            raise PatsnapInputError(f"{kind} must be one id, got {value!r}")


def check_wait(*, poll_interval: Any, timeout: Any, tolerated_errors: Any) -> None:
    """How a wait for a job is set (the hook's, the create operator's): seconds >= 0 between checks and
    in all, and the transient failures in a row tolerated, a whole number >= 0."""
    seconds("poll_interval", poll_interval)
    seconds("timeout", timeout)
    whole_number("tolerated_errors", tolerated_errors)


def create_body(patent_number: Any, patent_id: Any, report_type: Any) -> dict[str, str]:
    """The JSON body of a create, from checked inputs (:func:`check_create_inputs`)."""
    check_create_inputs(patent_number, patent_id, report_type)
    patent = {"patent_id": patent_id} if patent_id else {"patent_number": patent_number}
    return {**patent, "report_type": report_type}


def lost_create_message(patent: str, flag: str) -> str:
    """What to do when an earlier try sent a create whose answer never came back."""
    return (
        f"An earlier try of this task asked PatSnap to create a value report for {patent}, and its answer "
        "was lost (timeout, dropped connection or gateway error): a report may have been created and paid "
        "for. No new report was requested. Check your PatSnap account's report jobs; to pay for a new "
        f"report deliberately, set {flag}=True and clear the task."
    )


class PollAction(Enum):
    """What to do after one status check."""

    DONE = "done"  # the report is ready: its state holds the link
    FAILED = "failed"  # the job failed: PatSnap's cause is in the message
    WAIT = "wait"  # still being made, or a transient failure within what is tolerated: check again later
    GIVE_UP = "give_up"  # more transient failures in a row than tolerated


class PollDecision(NamedTuple):
    """The decision on one status check, and the transient failures in a row that it leaves."""

    action: PollAction
    errors_in_a_row: int
    message: str  # what to log (WAIT) or raise / report (FAILED, GIVE_UP)
    state: JobState | None = None


def decide(
    polled: JobState | PatsnapTransientError, errors_in_a_row: int, tolerated_errors: int
) -> PollDecision:
    """Decide on one status check: its answer (a :class:`JobState`) or the transient error it ended in,
    after ``errors_in_a_row`` transient failures; more than ``tolerated_errors`` in a row gives up. Any
    other error is the caller's to raise: it is not a poll's outcome."""
    if isinstance(polled, PatsnapTransientError):
        errors = errors_in_a_row + 1
        if errors > tolerated_errors:
            return PollDecision(
                PollAction.GIVE_UP, errors, f"{errors} status checks in a row failed; last: {polled}"
            )
        return PollDecision(
            PollAction.WAIT,
            errors,
            f"status check failed ({errors} of {tolerated_errors} tolerated): {polled}",
        )
    if polled.status is ReportStatus.DONE:
        return PollDecision(PollAction.DONE, 0, f"PatSnap report job {polled.job_id} is ready", polled)
    if polled.status is ReportStatus.FAILED:
        return PollDecision(PollAction.FAILED, 0, polled.failure_message(), polled)
    return PollDecision(
        PollAction.WAIT,
        0,
        f"job {polled.job_id}: job_status={polled.status.name}, queue_num={polled.queue_num}",
        polled,
    )


def poll_until_finished(
    get_state: Callable[[JobId], JobState],
    job_id: JobId,
    *,
    poll_interval: float,
    timeout: float,
    tolerated_errors: int,
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
    log: Any,
) -> JobState:
    """Check ``get_state`` until the job is done (its state) or failed (:class:`PatsnapReportError`), or
    the transient failures in a row exceed ``tolerated_errors`` (the last one is raised); raise
    :class:`AirflowSensorTimeout` when ``timeout`` seconds pass first, after one last check. ``sleep``
    waits between checks (and may raise to stop the wait)."""
    from airflow_provider_patsnap._compat import AirflowSensorTimeout

    give_up_at = monotonic() + timeout
    errors = 0
    while True:
        try:
            polled: JobState | PatsnapTransientError = get_state(job_id)
        except PatsnapTransientError as error:
            polled = error
        decision = decide(polled, errors, tolerated_errors)
        errors = decision.errors_in_a_row
        if decision.action is PollAction.DONE and decision.state is not None:
            return decision.state
        if decision.action is PollAction.FAILED:
            raise PatsnapReportError(decision.message)
        if decision.action is PollAction.GIVE_UP:
            assert isinstance(polled, PatsnapTransientError)
            raise polled
        log.info("%s", decision.message)
        left = give_up_at - monotonic()
        if left <= 0:
            raise AirflowSensorTimeout(f"PatSnap report job {job_id} not ready within {timeout:g} s")
        sleep(min(poll_interval, left))


TriggerStatus = Literal["success", "failed", "timeout", "error"]
TRIGGER_STATUSES: tuple[TriggerStatus, ...] = ("success", "failed", "timeout", "error")


def trigger_event(
    status: TriggerStatus, job_id: JobId, message: str, state: JobState | None = None
) -> dict[str, Any]:
    """The one event a report trigger yields."""
    return {
        "status": status,
        "job_id": str(job_id),
        "message": message,
        "report": state and state.as_payload(),
    }


def validate_trigger_event(event: Any) -> JobState:
    """The job state of a ``success`` event; the matching error for any other, or for no event at all.

    A resumed task receives whatever the triggerer stored: a missing or malformed event is a clear
    error rather than a ``KeyError``.
    """
    from airflow_provider_patsnap._compat import AirflowSensorTimeout

    if not isinstance(event, Mapping) or event.get("status") not in TRIGGER_STATUSES:
        raise PatsnapError(f"the report trigger resumed the task with no valid event: {str(event)[:200]!r}")
    message = str(event.get("message") or f"report trigger event {event.get('status')}")
    if event["status"] == "success":
        report = event.get("report")
        if not isinstance(report, Mapping):
            raise PatsnapError(f"the report trigger's success event carries no report: {str(event)[:200]!r}")
        return JobState.from_payload(report)
    if event["status"] == "failed":
        raise PatsnapReportError(message)
    if event["status"] == "timeout":
        raise AirflowSensorTimeout(message)
    raise PatsnapError(message)
