"""The report domain: the one poll decision (report.decide), job ids and the states PatSnap answers."""

from __future__ import annotations

import pytest

from airflow_provider_patsnap.exceptions import PatsnapError, PatsnapReportError, PatsnapTransientError
from airflow_provider_patsnap.report import (
    JobId,
    JobState,
    PollAction,
    ReportStatus,
    decide,
    trigger_event,
    validate_trigger_event,
)

JOB = JobId("1579434053399036001")
TRANSIENT = PatsnapTransientError("PatSnap is busy")


def state(status: ReportStatus) -> JobState:
    link = "https://files.test/report.pdf" if status is ReportStatus.DONE else None
    cause = "no valuation for design patents" if status is ReportStatus.FAILED else None
    return JobState(JOB, status, 3, link, cause)


@pytest.mark.parametrize("errors_before", [0, 1, 2])
@pytest.mark.parametrize(
    "status, action",
    [
        (ReportStatus.WAITING, PollAction.WAIT),
        (ReportStatus.EXPORTING, PollAction.WAIT),
        (ReportStatus.DONE, PollAction.DONE),
        (ReportStatus.FAILED, PollAction.FAILED),
    ],
)
def test_an_answer_decides_by_its_status_and_ends_a_run_of_errors(
    status: ReportStatus, action: PollAction, errors_before: int
) -> None:
    decision = decide(state(status), errors_before, tolerated_errors=2)
    assert (decision.action, decision.errors_in_a_row) == (action, 0)
    assert decision.state == state(status)
    if action is PollAction.FAILED:
        assert "no valuation for design patents" in decision.message
    if action is PollAction.WAIT:
        assert status.name in decision.message and "queue_num=3" in decision.message


@pytest.mark.parametrize(
    "errors_before, tolerated, action",
    [
        (0, 0, PollAction.GIVE_UP),  # nothing tolerated: the first transient failure gives up
        (0, 2, PollAction.WAIT),
        (1, 2, PollAction.WAIT),
        (2, 2, PollAction.GIVE_UP),  # the third in a row is one more than tolerated
        (5, 10, PollAction.WAIT),
    ],
)
def test_transient_errors_are_waited_out_until_more_than_tolerated(
    errors_before: int, tolerated: int, action: PollAction
) -> None:
    decision = decide(TRANSIENT, errors_before, tolerated)
    assert (decision.action, decision.errors_in_a_row) == (action, errors_before + 1)
    assert "PatSnap is busy" in decision.message and decision.state is None


@pytest.mark.parametrize("value", [1579434053399036001, "1579434053399036001", " 42 "])
def test_a_job_id_is_digits_kept_as_text(value: object) -> None:
    assert JobId.parse(value) == str(value).strip() and isinstance(JobId.parse(value), str)


@pytest.mark.parametrize("value", [1.579434053399036e18, True, "15794x", "", None, "١٢٣"])
def test_anything_but_digits_is_not_a_job_id(value: object) -> None:
    with pytest.raises(PatsnapReportError, match="job_id must be an integer"):
        JobId.parse(value)


def test_a_status_answer_about_another_job_is_refused() -> None:
    answer = {"job_id": "1579434053399036002", "job_status": 1}
    with pytest.raises(PatsnapReportError, match="answered about report job 1579434053399036002"):
        JobState.from_api(answer, JOB)


@pytest.mark.parametrize("status", ["2.0", 2, "2"])
def test_a_done_answer_needs_its_link(status: object) -> None:
    with pytest.raises(PatsnapReportError, match="is done but sent no download_url"):
        JobState.from_api({"job_id": str(JOB), "job_status": status}, JOB)
    done = JobState.from_api({"job_status": status, "download_url": "https://files.test/r.pdf"}, JOB)
    assert done.status is ReportStatus.DONE and done.download_url == "https://files.test/r.pdf"


def test_a_credential_echoed_in_a_cause_is_scrubbed() -> None:
    answer = {"job_status": 3, "abnormal_cause": "token sk-live-123 refused"}
    state = JobState.from_api(answer, JOB, scrub=lambda text: text.replace("sk-live-123", "***"))
    assert state.abnormal_cause == "token *** refused"


def test_the_payload_leaves_the_presigned_link_out_unless_asked_for() -> None:
    done = state(ReportStatus.DONE)
    assert done.as_payload()["download_url"] is None
    assert done.as_payload(with_link=True)["download_url"] == "https://files.test/report.pdf"
    assert JobState.from_payload(done.as_payload()) == JobState(JOB, ReportStatus.DONE, 3, None, None)


def test_a_trigger_event_round_trips_and_a_bad_one_is_a_clear_error() -> None:
    event = trigger_event("success", JOB, "ready", state(ReportStatus.DONE))
    assert validate_trigger_event(event).job_id == JOB
    with pytest.raises(PatsnapReportError, match="design"):
        validate_trigger_event(trigger_event("failed", JOB, "no valuation for design patents"))
    with pytest.raises(PatsnapError, match="no valid event"):
        validate_trigger_event({"status": "surprise"})
