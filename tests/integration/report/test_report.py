"""Value report (R002) over loopback against the sandbox: create, wait (poke / reschedule / deferred), download."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_patsnap._compat import AIRFLOW_V_3, AirflowSensorTimeout
from airflow_provider_patsnap.exceptions import PatsnapInputError, PatsnapReportError, PatsnapTransientError
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.operators.report import (
    PatsnapCreateValueReportOperator,
    PatsnapDownloadReportOperator,
    job_file_name,
    link_file_name,
    safe_file_name,
)
from airflow_provider_patsnap.report import ReportStatus
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sandbox.reports import FAILURE_CAUSE, report_bytes
from airflow_provider_patsnap.sensors.patsnap import PatsnapReportSensor
from airflow_provider_patsnap.triggers.patsnap import PatsnapReportTrigger
from tests.helpers import (
    FakeTaskInstance,
    FakeTaskStateStore,
    creates,
    finish_report_jobs,
    finish_report_jobs_once_polled,
)

try:
    from airflow.sdk.exceptions import AirflowRescheduleException, TaskDeferred
except ImportError:  # Airflow 2.11
    from airflow.exceptions import AirflowRescheduleException, TaskDeferred  # type: ignore[no-redef]

PN = "CN108977442B"


def create(context: dict[str, Any], patent_number: str = PN, **kwargs: Any) -> str:
    return PatsnapCreateValueReportOperator(
        task_id="create_report", patent_number=patent_number, **kwargs
    ).execute(context)


def sensor(job_id: str, **kwargs: Any) -> PatsnapReportSensor:
    kwargs = {"poke_interval": 0.1, "timeout": 20, **kwargs}
    return PatsnapReportSensor(task_id="wait_for_report", job_id=job_id, **kwargs)


def deferred_trigger(run: Callable[[], Any]) -> PatsnapReportTrigger:
    with pytest.raises(TaskDeferred) as deferred:
        run()
    assert deferred.value.method_name == "execute_complete"
    trigger = deferred.value.trigger
    assert isinstance(trigger, PatsnapReportTrigger)
    return trigger


def events_of(trigger: PatsnapReportTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def round_trip(trigger: PatsnapReportTrigger) -> PatsnapReportTrigger:
    classpath, kwargs = trigger.serialize()
    module_name, class_name = classpath.rsplit(".", 1)
    module = __import__(module_name, fromlist=[class_name])
    rebuilt = getattr(module, class_name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    return rebuilt


# --- create ------------------------------------------------------------------------------------------


def test_job_id_stays_an_exact_19_digit_string(sandbox: Sandbox, context: dict[str, Any]) -> None:
    job_id = create(context)
    assert isinstance(job_id, str) and re.fullmatch(r"\d{19}", job_id)
    assert int(job_id) > 2**53 and str(int(float(job_id))) != job_id  # a float would have corrupted it
    assert context["ti"].xcom["job_id"] == job_id
    # The same id inside an object: what Airflow 3.3's UI shows intact (a bare one it rounds).
    assert context["ti"].xcom["report_job"] == {"job_id": job_id, "patent": PN, "report_type": "pdf"}
    statuses = [record for record in sandbox.requests if record.path.endswith("/status")]
    assert statuses == []  # wait_for_completion defaults to False
    finish_report_jobs(sandbox)
    assert sensor(job_id).execute(context)["job_id"] == job_id
    assert sensor(context["ti"].xcom["report_job"]).execute(context)["job_id"] == job_id


def test_retry_reconnects_through_the_task_state_store(sandbox: Sandbox) -> None:
    store = FakeTaskStateStore()
    first = create({"ti": FakeTaskInstance(), "task_state_store": store})
    assert store.values == {"patsnap_report_job_id": first}
    # A retry gets a fresh task instance: its XComs are gone, the task state store is not.
    retried = create({"ti": FakeTaskInstance(), "task_state_store": store})
    assert retried == first
    assert creates(sandbox) == 1


def test_deferred_retry_reconnects_to_the_same_job(sandbox: Sandbox) -> None:
    store = FakeTaskStateStore()

    def run() -> str:
        return create(
            {"ti": FakeTaskInstance(), "task_state_store": store}, wait_for_completion=True, deferrable=True
        )

    first, retried = deferred_trigger(run), deferred_trigger(run)
    assert retried.job_id == first.job_id
    assert creates(sandbox) == 1


def test_create_can_wait_on_the_worker(sandbox: Sandbox, context: dict[str, Any]) -> None:
    finish_report_jobs_once_polled(sandbox)
    job_id = create(context, wait_for_completion=True, deferrable=False, poll_interval=0.1)
    assert context["ti"].xcom["job_id"] == job_id
    assert "download_url" not in context["ti"].xcom  # a 7-day bearer link is kept nowhere


def test_create_waits_deferred(sandbox: Sandbox, context: dict[str, Any]) -> None:
    operator = PatsnapCreateValueReportOperator(
        task_id="create_report", patent_id="9cf648f8-8283-4767-9a14-f90f68303f3e", report_type="word",
        wait_for_completion=True, deferrable=True, poll_interval=0.1,
    )  # fmt: skip
    trigger = deferred_trigger(lambda: operator.execute(context))
    finish_report_jobs(sandbox)
    [event] = events_of(round_trip(trigger))
    assert operator.execute_complete(context, event) == trigger.job_id == context["ti"].xcom["job_id"]


def test_create_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        PatsnapCreateValueReportOperator(task_id="t", patent_number=PN, patent_id="x")
    with pytest.raises(ValueError, match="exactly one"):
        PatsnapCreateValueReportOperator(task_id="t")
    with pytest.raises(ValueError, match="report_type"):
        PatsnapCreateValueReportOperator(task_id="t", patent_number=PN, report_type="html")


@pytest.mark.parametrize("bad", [" ", "CN1,CN2", "'CN1'", ["CN1"], "CN 1", 42])
def test_a_bad_report_patent_fails_before_any_call(
    sandbox: Sandbox, context: dict[str, Any], bad: Any
) -> None:
    with pytest.raises(PatsnapInputError) as raised:
        PatsnapCreateValueReportOperator(task_id="t", patent_number=bad)
    assert repr(bad)[:3] in str(raised.value) or type(bad).__name__ in str(raised.value)
    templated = PatsnapCreateValueReportOperator(task_id="t", patent_number="{{ params.pn }}")
    templated.patent_number = bad  # what rendering produced
    with pytest.raises(PatsnapInputError):
        templated.execute(context)
    with pytest.raises(PatsnapInputError):  # the hook's create checks by the same rules (report.py)
        PatsnapHook().create_value_report(patent_number=bad)
    assert creates(sandbox) == 0


def test_a_templated_report_type_is_checked_once_rendered(sandbox: Sandbox, context: dict[str, Any]) -> None:
    templated = PatsnapCreateValueReportOperator(
        task_id="t", patent_number=PN, report_type="{{ params.report_type }}"
    )
    templated.report_type = "html"  # what rendering produced
    with pytest.raises(PatsnapInputError, match="report_type must be one of"):
        templated.execute(context)
    assert creates(sandbox) == 0 and context["task_state_store"].values == {}


# --- wait ----------------------------------------------------------------------------------------------


def test_sensor_poke_mode(sandbox: Sandbox, context: dict[str, Any]) -> None:
    job_id = create(context)
    finish_report_jobs_once_polled(sandbox)
    report = sensor(job_id).execute(context)
    assert report["job_status"] == ReportStatus.DONE and report["download_url"] is None
    assert "download_url" not in context["ti"].xcom


def test_sensor_reschedule_mode(
    sandbox: Sandbox, context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not AIRFLOW_V_3:  # 2.11 reads the first try's start date from the metadata DB
        monkeypatch.setattr("airflow.sensors.base._orig_start_date", lambda **_: None)
    job_id = create(context)
    reschedules = 0
    while reschedules < 100:  # what the scheduler does: run the task again after each reschedule
        task = sensor(job_id, mode="reschedule", poke_interval=0.2)
        task_context = {**context, "ti": _RescheduledTaskInstance(context["ti"])}
        try:
            report = task.execute(task_context)
            break
        except AirflowRescheduleException:
            reschedules += 1
            sandbox.advance(sandbox.config.report_delay / 3)  # time passes between reschedules
    assert reschedules >= 1
    assert report["job_status"] == ReportStatus.DONE


class _RescheduledTaskInstance(FakeTaskInstance):
    def __init__(self, shared: FakeTaskInstance) -> None:
        self.xcom = shared.xcom
        self.try_number = 1
        self.max_tries = 0
        self.dag_id = "patsnap_value_report"
        self.run_id = "manual"

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


def test_sensor_deferred(sandbox: Sandbox, context: dict[str, Any]) -> None:
    job_id = create(context)
    task = sensor(job_id, deferrable=True)
    trigger = deferred_trigger(lambda: task.execute(context))
    assert trigger.job_id == job_id
    finish_report_jobs(sandbox)
    events = events_of(round_trip(trigger))
    assert [event["status"] for event in events] == ["success"]
    report = task.execute_complete(context, events[0])
    assert report["job_id"] == job_id and report["job_status"] == ReportStatus.DONE
    assert events[0]["report"]["download_url"] is None  # the triggerer logs events: no link in them


def test_sensor_returns_at_once_when_already_done(sandbox: Sandbox, context: dict[str, Any]) -> None:
    job_id = create(context)
    finish_report_jobs(sandbox)
    assert sensor(job_id, deferrable=True).execute(context)["job_status"] == ReportStatus.DONE


def test_failed_job_reports_the_cause(sandbox: Sandbox, context: dict[str, Any]) -> None:
    first = create(context, patent_number="CN1FAIL")
    finish_report_jobs(sandbox)
    with pytest.raises(PatsnapReportError, match=FAILURE_CAUSE):
        sensor(first).execute(context)
    task = sensor(
        create({"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()}, patent_number="CN2FAIL"),
        deferrable=True,
    )
    trigger = deferred_trigger(lambda: task.execute(context))
    finish_report_jobs(sandbox)
    [event] = events_of(trigger)
    assert event["status"] == "failed" and FAILURE_CAUSE in event["message"]
    with pytest.raises(PatsnapReportError, match=FAILURE_CAUSE) as failed:
        task.execute_complete(context, event)
    assert sandbox.config.client_secret not in str(failed.value)


def test_timeout_is_a_sensor_timeout(sandbox: Sandbox, context: dict[str, Any]) -> None:
    # The sandbox's clock is frozen, so the job stays unfinished; a timeout of 0 has passed by the first
    # check, so the sensor and the trigger time out without anyone waiting for a deadline.
    job_id = create(context)
    with pytest.raises(AirflowSensorTimeout):
        sensor(job_id, timeout=0).execute(context)
    task = sensor(job_id, deferrable=True, timeout=0)
    [event] = events_of(deferred_trigger(lambda: task.execute(context)))
    assert event["status"] == "timeout"
    with pytest.raises(AirflowSensorTimeout, match=job_id):
        task.execute_complete(context, event)


def test_trigger_checks_once_more_before_a_timeout(sandbox: Sandbox, context: dict[str, Any]) -> None:
    job_id = create(context)
    finish_report_jobs(sandbox)
    late = PatsnapReportTrigger(job_id=job_id, end_time=time.time() - 60, poll_interval=0.1)
    assert [event["status"] for event in events_of(late)] == ["success"]


def test_sensor_tolerates_a_few_transient_poll_errors(
    start_sandbox: Callable[..., Sandbox], context: dict[str, Any]
) -> None:
    sandbox = start_sandbox(faults=("busy", "http502"))
    job_id = create(context)
    sandbox.set_fault_rate(0.5)
    finish_report_jobs_once_polled(sandbox)
    assert sensor(job_id, tolerated_errors=10).execute(context)["job_status"] == ReportStatus.DONE
    trigger = PatsnapReportTrigger(
        job_id=job_id, end_time=time.time() + 20, poll_interval=0.1, tolerated_errors=10
    )
    assert [event["status"] for event in events_of(trigger)] == ["success"]
    assert sandbox.stats()["faults"]


def test_too_many_transient_poll_errors_fail(
    start_sandbox: Callable[..., Sandbox], context: dict[str, Any]
) -> None:
    sandbox = start_sandbox(faults=("busy",))
    job_id = create(context)
    sandbox.set_fault_rate(1.0)
    with pytest.raises(PatsnapTransientError):
        sensor(job_id, tolerated_errors=2).execute(context)
    trigger = PatsnapReportTrigger(
        job_id=job_id, end_time=time.time() + 20, poll_interval=0.05, tolerated_errors=2
    )
    [event] = events_of(trigger)
    assert event["status"] == "error" and "3 status checks" in event["message"]


def test_trigger_kwargs_are_json() -> None:
    trigger = PatsnapReportTrigger(job_id="1579434053399036001", end_time=1.5e9, patsnap_conn_id="other")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_patsnap.triggers.patsnap.PatsnapReportTrigger"
    assert json.loads(json.dumps(kwargs))["job_id"] == "1579434053399036001"
    assert round_trip(trigger).patsnap_conn_id == "other"


# --- download ------------------------------------------------------------------------------------------


def ready_job(
    sandbox: Sandbox, context: dict[str, Any], patent_number: str = PN, report_type: str = "pdf"
) -> str:
    job_id = create(context, patent_number=patent_number, report_type=report_type)
    finish_report_jobs(sandbox)
    sensor(job_id).execute(context)
    return job_id


@pytest.mark.parametrize(("report_type", "suffix"), [("pdf", ".pdf"), ("word", ".docx")])
def test_download_writes_the_exact_bytes(
    sandbox: Sandbox, context: dict[str, Any], tmp_path: Path, report_type: str, suffix: str
) -> None:
    job_id = ready_job(sandbox, context, report_type=report_type)
    target = tmp_path / "reports"
    path = PatsnapDownloadReportOperator(task_id="download", job_id=job_id, target=str(target)).execute(
        context
    )
    assert path == str(target / f"patent_value_report_{PN}_{job_id}{suffix}")
    assert Path(path).read_bytes() == report_bytes(job_id, PN, report_type)


def test_download_takes_the_sensor_payload(sandbox: Sandbox, context: dict[str, Any], tmp_path: Path) -> None:
    job_id = create(context)
    finish_report_jobs(sandbox)
    payload = sensor(job_id).execute(context)
    operator = PatsnapDownloadReportOperator(
        task_id="download", job_id=payload, target=tmp_path, file_name="mine.pdf"
    )
    assert Path(operator.execute(context)).read_bytes() == report_bytes(job_id, PN, "pdf")


def test_expired_link_says_to_create_a_new_report(
    start_sandbox: Callable[..., Sandbox], context: dict[str, Any], tmp_path: Path
) -> None:
    sandbox = start_sandbox(link_ttl=3600)
    job_id = ready_job(sandbox, context)
    sandbox.advance(3600)
    with pytest.raises(PatsnapReportError, match=r"expired.*create a new report"):
        PatsnapDownloadReportOperator(task_id="download", job_id=job_id, target=tmp_path).execute(context)
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_a_rerun_after_the_link_expired_keeps_the_report_downloaded_before(
    start_sandbox: Callable[..., Sandbox], context: dict[str, Any], tmp_path: Path
) -> None:
    sandbox = start_sandbox(link_ttl=3600)
    job_id = ready_job(sandbox, context)
    download = PatsnapDownloadReportOperator(task_id="download", job_id=job_id, target=tmp_path)
    saved = Path(download.execute(context))
    first = saved.read_bytes()
    sandbox.advance(3600)  # the link dies; the report on disk was paid for and must stay
    with pytest.raises(PatsnapReportError, match=r"expired.*create a new report"):
        PatsnapDownloadReportOperator(task_id="download", job_id=job_id, target=tmp_path).execute(context)
    assert list(tmp_path.iterdir()) == [saved]  # no partial file either
    assert saved.read_bytes() == first == report_bytes(job_id, PN, "pdf")


def test_traversal_file_name_stays_in_the_target(
    sandbox: Sandbox, context: dict[str, Any], tmp_path: Path
) -> None:
    pn = "CN1TRAVERSAL"
    job_id = ready_job(sandbox, context, patent_number=pn)
    target = tmp_path / "a" / "b" / "c"
    path = Path(
        PatsnapDownloadReportOperator(task_id="download", job_id=job_id, target=target).execute(context)
    )
    assert path == target / f"passwd_{pn}_{job_id}.pdf"
    assert path.read_bytes() == report_bytes(job_id, pn, "pdf")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [path]


def test_download_of_an_unfinished_or_failed_job(sandbox: Sandbox, tmp_path: Path) -> None:
    waiting = create({"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()})
    with pytest.raises(PatsnapReportError, match="not ready"):
        PatsnapDownloadReportOperator(task_id="download", job_id=waiting, target=tmp_path).execute({})
    failed = create(
        {"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()}, patent_number="CN3FAIL"
    )
    finish_report_jobs(sandbox)
    with pytest.raises(PatsnapReportError, match=FAILURE_CAUSE):
        PatsnapDownloadReportOperator(task_id="download", job_id=failed, target=tmp_path).execute({})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../../etc/passwd_CN1.pdf", "passwd_CN1.pdf"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("..", "fallback.pdf"),
        ("/abs/.hidden", "hidden"),
        ("报告 CN1.pdf", "报告 CN1.pdf"),
        ("a\x00b;rm -rf.pdf", "a_b_rm -rf.pdf"),
    ],
)
def test_safe_file_name(name: str, expected: str) -> None:
    assert safe_file_name(name, "fallback.pdf") == expected


def test_link_file_name_prefers_the_content_disposition() -> None:
    url = (
        "https://dl.example/r/x.bin?response-content-disposition=attachment%3B%20filename%3D%22r%20CN1.pdf%22"
    )
    assert link_file_name(url) == "r CN1.pdf"
    assert link_file_name("https://dl.example/r/report%201.pdf?X-Amz-Expires=1") == "report 1.pdf"


# --- surface -------------------------------------------------------------------------------------------


def test_no_presigned_link_reaches_xcom_events_or_logs(
    sandbox: Sandbox, context: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    job_id = create(context)
    task = sensor(job_id, deferrable=True)
    trigger = deferred_trigger(lambda: task.execute(context))
    finish_report_jobs(sandbox)
    [event] = events_of(trigger)
    payload = task.execute_complete(context, event)
    path = PatsnapDownloadReportOperator(task_id="download", job_id=payload, target=tmp_path).execute(context)
    assert Path(path).read_bytes() == report_bytes(job_id, PN, "pdf")
    link = PatsnapHook().get_report_status(job_id)["download_url"]  # what the download task used
    signature = link.split("X-Amz-Signature=")[1][:16]
    for text in (json.dumps(event), json.dumps(payload), json.dumps(context["ti"].xcom), caplog.text):
        assert link not in text and signature not in text


def test_later_reports_and_reruns_never_overwrite_a_file(sandbox: Sandbox, tmp_path: Path) -> None:
    first = ready_job(sandbox, {"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()})
    second = ready_job(sandbox, {"ti": FakeTaskInstance(), "task_state_store": FakeTaskStateStore()})
    paths = {
        PatsnapDownloadReportOperator(task_id="download", job_id=job, target=tmp_path).execute({})
        for job in (first, second, first)
    }
    assert len(paths) == 2 and all(Path(path).exists() for path in paths)
    assert job_file_name("report.pdf", first, ".pdf") == f"report_{first}.pdf"
    assert job_file_name("..", first, ".pdf") == f"patsnap_report_{first}.pdf"


@pytest.mark.parametrize(
    ("operator_class", "templated"),
    [
        (PatsnapCreateValueReportOperator, {"patent_number", "patent_id", "report_type", "patsnap_conn_id"}),
        (PatsnapReportSensor, {"job_id", "patsnap_conn_id"}),
        (PatsnapDownloadReportOperator, {"job_id", "target", "file_name", "patsnap_conn_id"}),
    ],
)
def test_templated_fields_and_documented_params(operator_class: type, templated: set[str]) -> None:
    assert set(operator_class.template_fields) == templated
    params = [
        name
        for name in inspect.signature(operator_class.__init__).parameters
        if name not in ("self", "kwargs")
    ]
    for name in params:
        assert f":param {name}:" in (operator_class.__doc__ or ""), name
