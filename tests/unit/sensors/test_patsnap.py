"""PatsnapReportSensor's pokes: each is a status check through the hook, decided by report.decide."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests_mock

from airflow_provider_patsnap.exceptions import PatsnapReportError, PatsnapTransientError
from airflow_provider_patsnap.report import STATUS_PATH, JobId, ReportStatus
from airflow_provider_patsnap.sensors.patsnap import PatsnapReportSensor
from tests.helpers import BASE_URL, FakeTaskInstance, FakeTaskStateStore

JOB = JobId("1579434053399036001")


def status_answer(status: int) -> dict[str, Any]:
    link = "https://files.test/report.pdf" if status == ReportStatus.DONE else None
    data = {"job_id": int(JOB), "job_status": status, "queue_num": 1, "download_url": link}
    return {"json": {"data": data, "status": True, "error_code": 0}}


BUSY = {"status_code": 503, "json": {"status": False, "error_code": 67200100, "error_msg": "busy"}}


@pytest.fixture
def no_retries(vendor: requests_mock.Mocker, monkeypatch: pytest.MonkeyPatch) -> requests_mock.Mocker:
    """The vendor of the unit tier, through a connection that does not retry: one poke, one call."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        json.dumps(
            {
                "conn_type": "patsnap",
                "host": BASE_URL,
                "login": "unit-client",
                "password": "unit-secret",
                "extra": {"qps": 0, "max_retries": 0, "timeout": 2},
            }
        ),
    )
    return vendor


def test_reschedule_mode_counts_transient_errors_across_pokes(no_retries: requests_mock.Mocker) -> None:
    """In reschedule mode every poke is a new sensor in a new process: the count lives in the task's
    state, so the third failure in a row fails the task (two tolerated)."""
    no_retries.get(f"{BASE_URL}{STATUS_PATH}", [BUSY, BUSY, BUSY])
    context = {"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()}

    def poke() -> bool:
        sensor = PatsnapReportSensor(task_id="wait", job_id=str(JOB), mode="reschedule", tolerated_errors=2)
        return sensor.poke(context)

    assert poke() is False and poke() is False
    with pytest.raises(PatsnapTransientError):
        poke()
    assert context["task_state_store"].values == {}  # nothing left behind


def test_an_answer_between_errors_starts_the_count_again(no_retries: requests_mock.Mocker) -> None:
    no_retries.get(f"{BASE_URL}{STATUS_PATH}", [BUSY, BUSY, status_answer(1), BUSY, BUSY, status_answer(2)])
    context = {"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()}

    def poke() -> bool:
        sensor = PatsnapReportSensor(task_id="wait", job_id=str(JOB), mode="reschedule", tolerated_errors=2)
        return sensor.poke(context)

    pokes = [poke() for _ in range(6)]
    assert pokes == [False] * 5 + [True]


def test_a_failed_job_fails_the_poke_with_its_cause(no_retries: requests_mock.Mocker) -> None:
    failed = status_answer(3)
    failed["json"]["data"]["abnormal_cause"] = "设计专利无法估值"
    no_retries.get(f"{BASE_URL}{STATUS_PATH}", [failed])
    sensor = PatsnapReportSensor(task_id="wait", job_id=str(JOB))
    with pytest.raises(PatsnapReportError, match="设计专利无法估值"):
        sensor.poke({"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()})
