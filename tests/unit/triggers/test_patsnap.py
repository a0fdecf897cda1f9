"""PatsnapReportTrigger's events, against the unit tier's mocked PatSnap: exactly one event per run."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import requests_mock

from airflow_provider_patsnap.report import STATUS_PATH, JobId
from airflow_provider_patsnap.triggers.patsnap import PatsnapReportTrigger
from tests.helpers import BASE_URL

JOB = JobId("1579434053399036001")
URL = f"{BASE_URL}{STATUS_PATH}"
BUSY = {"status_code": 503, "json": {"status": False, "error_code": 67200100, "error_msg": "busy"}}


def status(job_status: int, **fields: Any) -> dict[str, Any]:
    data = {"job_id": int(JOB), "job_status": job_status, "queue_num": 2, **fields}
    return {"json": {"data": data, "status": True, "error_code": 0}}


def events(trigger: PatsnapReportTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def trigger(**kwargs: Any) -> PatsnapReportTrigger:
    return PatsnapReportTrigger(
        **{"job_id": str(JOB), "end_time": time.time() + 3600, "poll_interval": 0, **kwargs}
    )


@pytest.fixture
def no_retries(vendor: requests_mock.Mocker, monkeypatch: pytest.MonkeyPatch) -> requests_mock.Mocker:
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


def test_it_serialises_to_json_and_back() -> None:
    classpath, kwargs = trigger(tolerated_errors=4).serialize()
    rebuilt = PatsnapReportTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs) and kwargs["job_id"] == str(JOB)


def test_waiting_then_done_is_one_success_event_without_the_link(no_retries: requests_mock.Mocker) -> None:
    no_retries.get(URL, [status(0), status(1), status(2, download_url="https://files.test/r.pdf")])
    [event] = events(trigger())
    assert event["status"] == "success" and event["job_id"] == str(JOB)
    assert event["report"]["job_status"] == 2 and event["report"]["download_url"] is None


def test_a_failed_job_is_a_failed_event_with_its_cause(no_retries: requests_mock.Mocker) -> None:
    no_retries.get(URL, [status(3, abnormal_cause="设计专利无法估值")])
    [event] = events(trigger())
    assert event["status"] == "failed" and "设计专利无法估值" in event["message"]


def test_transient_errors_are_tolerated_then_give_up(no_retries: requests_mock.Mocker) -> None:
    no_retries.get(URL, [BUSY, BUSY, status(1), BUSY, BUSY, BUSY])
    [event] = events(trigger(tolerated_errors=2))
    assert event["status"] == "error" and event["message"].startswith("3 status checks in a row failed")
    assert no_retries.call_count == 7  # the token, then six checks: the answer in the middle reset the count


def test_an_error_no_retry_can_fix_ends_the_wait_at_once(no_retries: requests_mock.Mocker) -> None:
    no_retries.get(URL, [{"json": {"status": False, "error_code": 67200004, "error_msg": "no permission"}}])
    [event] = events(trigger())
    assert event["status"] == "error" and "no permission" in event["message"]


def test_past_its_deadline_it_checks_once_more_then_times_out(no_retries: requests_mock.Mocker) -> None:
    no_retries.get(URL, [status(1)])
    [event] = events(trigger(end_time=time.time() - 1))
    assert event["status"] == "timeout" and no_retries.call_count == 2  # the token, one last check
