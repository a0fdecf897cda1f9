"""Operators for the PatSnap patent value report (R002): create the job, download the file.

Waiting for the job is :class:`~airflow_provider_patsnap.sensors.patsnap.PatsnapReportSensor`'s work, or
the create operator's with ``wait_for_completion=True``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from airflow_provider_patsnap._compat import (
    AIRFLOW_V_3,
    BaseOperator,
    BaseOperatorLink,
    Context,
    ObjectStoragePath,
    ResumableJobMixin,
    VariableTaskState,
    XCom,
    conf_getboolean,
)
from airflow_provider_patsnap.endpoints import VALUE_REPORT
from airflow_provider_patsnap.exceptions import PatsnapReportError
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook, job_id_text
from airflow_provider_patsnap.triggers.patsnap import (
    PatsnapReportTrigger,
    failure_message,
    report_from_event,
    report_outcome,
    wait_for_report,
)

JOB_ID_KEY = "job_id"
DOWNLOAD_URL_KEY = "download_url"
_UNSAFE_CHARS = re.compile(r"[^\w.\- ]")
_MAX_NAME = 200


class PatsnapReportJobLink(BaseOperatorLink):
    """Opens the finished report: the presigned download link the task saw (valid for 7 days)."""

    name = "PatSnap report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        if AIRFLOW_V_3:  # evaluated on the worker as the task ends, by the operator that ran
            return getattr(operator, DOWNLOAD_URL_KEY, None) or ""
        return XCom.get_value(key=DOWNLOAD_URL_KEY, ti_key=ti_key) or ""


def keep_download_url(task: Any, context: Context, report: Mapping[str, Any]) -> None:
    """Keep the finished job's download link on the task and in XCom, for :class:`PatsnapReportJobLink`."""
    url = report.get("download_url")
    if not url:
        return
    setattr(task, DOWNLOAD_URL_KEY, url)
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(key=DOWNLOAD_URL_KEY, value=url)


class _NotResumable:
    """Stands in for ResumableJobMixin before Airflow 3.3."""


_ResumableBase: Any = ResumableJobMixin if ResumableJobMixin is not None else _NotResumable


class PatsnapCreateValueReportOperator(_ResumableBase, BaseOperator):
    """
    Create a PatSnap patent value report job (R002) for one patent; return its ``job_id`` string.

    The job is created in ``execute`` on the worker and its id pushed to XCom (key ``job_id``) at once.
    Each job is paid for, so a retry must not create a second one: on Airflow 3.3+ the job id is kept
    in the task state store (``ResumableJobMixin``) and a retry reconnects to the job; on older Airflow
    the job id is kept in an Airflow Variable named after the task instance until the task is done
    (XCom cannot carry it: Airflow clears a task's XComs at every new try).

    :param patent_number: The patent's publication number (templated); give this or ``patent_id``.
    :param patent_id: The PatSnap patent id (templated); give this or ``patent_number``.
    :param report_type: ``pdf`` or ``word`` (templated).
    :param patsnap_conn_id: The Airflow connection id (templated).
    :param wait_for_completion: Wait until the report is ready (or has failed) before succeeding.
    :param deferrable: Wait in the triggerer rather than on the worker; defaults to Airflow's
        ``[operators] default_deferrable``. Only used with ``wait_for_completion``.
    :param poll_interval: Seconds between status checks while waiting.
    :param timeout: Seconds to wait for the report before the task fails with a sensor timeout.
    :param tolerated_errors: Transient status-check failures in a row tolerated while waiting.
    """

    template_fields: Sequence[str] = ("patent_number", "patent_id", "report_type", "patsnap_conn_id")
    operator_extra_links = (PatsnapReportJobLink(),)
    external_id_key = "patsnap_report_job_id"
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        patent_number: str | None = None,
        patent_id: str | None = None,
        report_type: str = "pdf",
        patsnap_conn_id: str = PatsnapHook.default_conn_name,
        wait_for_completion: bool = False,
        deferrable: bool = conf_getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30.0,
        timeout: float = 3600.0,
        tolerated_errors: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if bool(patent_number) == bool(patent_id):
            raise ValueError("give exactly one of patent_number or patent_id")
        if (
            isinstance(report_type, str)
            and "{{" not in report_type
            and report_type not in VALUE_REPORT.report_types
        ):
            raise ValueError(f"report_type must be one of {VALUE_REPORT.report_types}, got {report_type!r}")
        self.patent_number = patent_number
        self.patent_id = patent_id
        self.report_type = report_type
        self.patsnap_conn_id = patsnap_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.tolerated_errors = tolerated_errors

    @cached_property
    def hook(self) -> PatsnapHook:
        return PatsnapHook(self.patsnap_conn_id)

    def execute(self, context: Context) -> str:
        if ResumableJobMixin is not None:
            return self.execute_resumable(context)
        # Before Airflow 3.3: the same reconnect-on-retry, with the job id kept in a Variable.
        state = _task_state(context)
        job_id = state.get(self.external_id_key)
        if job_id and self.get_job_status(job_id, context) != str(VALUE_REPORT.failed):
            self.log.info("Reconnecting to PatSnap report job %s created by an earlier try", job_id)
            context["ti"].xcom_push(key=JOB_ID_KEY, value=job_id)
        else:
            job_id = self.submit_job(context)
            state.set(self.external_id_key, job_id)
        result = self.poll_until_complete(job_id, context)
        _forget_job(context, self.external_id_key)
        return result

    def submit_job(self, context: Context) -> str:
        """Create the (paid) report job and push its id to XCom straight away."""
        job_id = self.hook.create_value_report(
            patent_id=self.patent_id, patent_number=self.patent_number, report_type=self.report_type
        )
        self.log.info("Created PatSnap report job %s", job_id)
        context["ti"].xcom_push(key=JOB_ID_KEY, value=job_id)
        return job_id

    def get_job_status(self, external_id: Any, context: Context) -> str:
        return str(self.hook.get_report_status(job_id_text(external_id))["job_status"])

    def is_job_active(self, status: str) -> bool:
        return status in (str(VALUE_REPORT.waiting), str(VALUE_REPORT.exporting))

    def is_job_succeeded(self, status: str) -> bool:
        return status == str(VALUE_REPORT.done)

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        """Wait for the job if asked to (deferring when ``deferrable``); return the job id.

        The return value matters: ``ResumableJobMixin`` returns it as the task's result when it
        reconnects to a running job.
        """
        job_id = job_id_text(external_id)
        if not self.wait_for_completion:
            return job_id
        trigger = PatsnapReportTrigger(
            job_id=job_id,
            end_time=time.time() + self.timeout,
            patsnap_conn_id=self.patsnap_conn_id,
            poll_interval=self.poll_interval,
            tolerated_errors=self.tolerated_errors,
        )
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete")
        keep_download_url(self, context, wait_for_report(trigger))
        return job_id

    def get_job_result(self, external_id: Any, context: Context) -> str:
        return job_id_text(external_id)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired: return the job id, or raise the event's error."""
        report = report_from_event(event)
        keep_download_url(self, context, report)
        if ResumableJobMixin is None:
            _forget_job(context, self.external_id_key)
        return job_id_text(report["job_id"])


def _task_state(context: Context) -> Any:
    return context.get("task_state_store") or VariableTaskState(context["ti"])


def _forget_job(context: Context, key: str) -> None:
    """The task is done: a later clear-and-rerun is a new request for a new report."""
    state = _task_state(context)
    if hasattr(state, "delete"):
        state.delete(key)


def link_file_name(url: str) -> str:
    """The file name the link asks for (``response-content-disposition``), else its path's last part."""
    parts = urlsplit(url)
    disposition = (parse_qs(parts.query).get("response-content-disposition") or [""])[0]
    match = re.search(r"filename\*?\s*=\s*(?:UTF-8'')?\"?([^\";]+)", disposition, re.IGNORECASE)
    return unquote(match.group(1)) if match else PurePosixPath(unquote(parts.path)).name


def safe_file_name(name: str, fallback: str) -> str:
    """Keep only the last path component, with unusual characters replaced: never leaves the target."""
    base = re.split(r"[\\/]", name)[-1]
    base = _UNSAFE_CHARS.sub("_", base).strip(" .")
    return base[-_MAX_NAME:] or fallback


class PatsnapDownloadReportOperator(BaseOperator):
    """
    Download a finished PatSnap value report into a directory; return the file's path.

    A fresh status is fetched for the job, and its presigned link downloaded, streamed, with no PatSnap
    credentials sent to that host. The file name comes from the link, reduced to a plain name inside
    ``target``. A size mismatch with ``Content-Length`` fails the task. Links live 7 days: past that,
    the task fails saying to create a new report.

    :param job_id: The report job id, or the status payload a ``PatsnapReportSensor`` returned
        (templated).
    :param target: A local directory, or an Airflow ``ObjectStoragePath`` or URL such as
        ``s3://bucket/reports/`` (templated). Created if missing.
    :param file_name: Use this file name instead of the link's (templated); made safe the same way.
    :param patsnap_conn_id: The Airflow connection id (templated).
    """

    template_fields: Sequence[str] = ("job_id", "target", "file_name", "patsnap_conn_id")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        job_id: str | Mapping[str, Any],
        target: str | Path | ObjectStoragePath,
        file_name: str | None = None,
        patsnap_conn_id: str = PatsnapHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.target = target
        self.file_name = file_name
        self.patsnap_conn_id = patsnap_conn_id

    @cached_property
    def hook(self) -> PatsnapHook:
        return PatsnapHook(self.patsnap_conn_id)

    def _directory(self) -> Path | ObjectStoragePath:
        if isinstance(self.target, str) and "://" in self.target:
            return ObjectStoragePath(self.target)
        return self.target if isinstance(self.target, ObjectStoragePath) else Path(self.target)

    def execute(self, context: Context) -> str:
        job_id = job_id_text(self.job_id["job_id"] if isinstance(self.job_id, Mapping) else self.job_id)
        report = self.hook.get_report_status(job_id)
        outcome = report_outcome(report)
        if outcome == "failed":
            raise PatsnapReportError(failure_message(report))
        if outcome is None or not report.get("download_url"):
            raise PatsnapReportError(
                f"PatSnap report job {job_id} is not ready (job_status={report['job_status']}): "
                "wait for it with PatsnapReportSensor first"
            )
        url = report["download_url"]
        directory = self._directory()
        directory.mkdir(parents=True, exist_ok=True)
        fallback = f"patsnap_report_{job_id}{PurePosixPath(urlsplit(url).path).suffix}"
        path = directory / safe_file_name(self.file_name or link_file_name(url), fallback)
        try:
            with path.open("wb") as handle:
                written, length = self.hook.download(url, handle)
            if written == 0 or (length is not None and written != length):
                raise PatsnapReportError(
                    f"download of report job {job_id} is incomplete: {written} of {length} bytes; "
                    "rerun the task"
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.log.info("Wrote %d bytes of report job %s to %s", written, job_id, path)
        return str(path)
