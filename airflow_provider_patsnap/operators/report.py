"""Operators for the PatSnap patent value report (R002): create the job, download the file.

Waiting for the job is :class:`~airflow_provider_patsnap.sensors.patsnap.PatsnapReportSensor`'s work, or
the create operator's with ``wait_for_completion=True``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from airflow_provider_patsnap._compat import (
    BaseOperator,
    Context,
    ObjectStoragePath,
    ResumableJobMixin,
    VariableTaskState,
    conf_get,
    conf_getboolean,
    retry_policy_kwargs,
    task_state,
)
from airflow_provider_patsnap.exceptions import (
    InvalidDestinationError,
    PatsnapFailFastError,
    PatsnapRateLimitError,
    PatsnapReportError,
)
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.lineage import public_url
from airflow_provider_patsnap.report import (
    ACTIVE_STATUSES,
    JobId,
    ReportStatus,
    check_create_inputs,
    check_wait,
    job_id_of,
    lost_create_message,
    report_job,
    validate_trigger_event,
)
from airflow_provider_patsnap.retry import DEFAULT_RETRY_POLICY
from airflow_provider_patsnap.triggers.patsnap import PatsnapReportTrigger

__all__ = [
    "PatsnapCreateValueReportOperator",
    "PatsnapDownloadReportOperator",
]

JOB_ID_KEY = "job_id"
#: The job as an object, ``{"job_id": "...", "patent": ..., "report_type": ...}``: what Airflow 3.3's UI
#: shows intact (docs/report.md, "The job id is a string").
REPORT_JOB_KEY = "report_job"
_UNSAFE_CHARS = re.compile(r"[^\w.\- ]")
_MAX_NAME = 200
#: Executors that run every task on the machine of the scheduler (or of ``airflow dags test``): a local
#: folder there is where the next task, and you, will look.
ONE_MACHINE_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})
#: Object storage that is a worker's own disk (or memory), not storage every worker shares.
LOCAL_PROTOCOLS = frozenset({"", "file", "local", "memory"})


class PatsnapCreateValueReportOperator(ResumableJobMixin, BaseOperator):
    """
    Create a PatSnap patent value report job (R002) for one patent; return its ``job_id`` string.

    The job is created in ``execute`` on the worker and its id pushed to XCom at once: key ``job_id``
    (the string), and key ``report_job``, ``{"job_id": ..., "patent": ..., "report_type": ...}``, which
    Airflow 3.3's UI shows intact (it rounds a bare string of digits like a JavaScript number).
    Each job is paid for, so no retry may create a second one: the operator is a ``ResumableJobMixin``
    (Airflow 3.3's, with its task state store; before 3.3 an equivalent keeping the state in an Airflow
    Variable named after the task instance). Just before the create call is sent (the token fetched,
    the rate-limit slot reached), the attempt is recorded in that state; a failure before that (the token
    endpoint down) is an ordinary one, which Airflow's retries may repeat. The job id replaces the
    attempt once PatSnap answers. A retry that finds the job id reconnects to the job (a failed job is
    replaced by a new one; a finished one is returned at once). A create whose answer was lost (timeout,
    dropped connection, gateway error) has an unknown outcome: the task fails at once, without Airflow
    retries, and a new create needs ``recreate_after_lost_answer=True``. The state is kept by Airflow
    3.3's store after success (clearing the task reconnects to the paid job); before 3.3 the Variable is
    deleted on success (clearing the task asks for a new report).

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
    :param recreate_after_lost_answer: Create a new (paid) report even though an earlier create of this
        task instance may have succeeded unseen. Set it only after checking your PatSnap account.
    :param durable: ``ResumableJobMixin``'s switch (default True). ``False`` keeps no state at all: every
        try creates a new, paid job (a lost answer still fails its own try without Airflow retries, but
        a retry after a crash, or a clear, pays again).
    :param retry_policy: Airflow 3.3+: the default fails what no retry can fix and retries rate limits
        after PatSnap's ``Retry-After`` (:mod:`airflow_provider_patsnap.retry`); ``None`` opts out.
    """

    template_fields: Sequence[str] = ("patent_number", "patent_id", "report_type", "patsnap_conn_id")
    external_id_key = "patsnap_report_job_id"
    attempt_key = "patsnap_report_create_attempt"
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
        recreate_after_lost_answer: bool = False,
        durable: bool = True,
        retry_policy: Any = DEFAULT_RETRY_POLICY,
        **kwargs: Any,
    ) -> None:
        super().__init__(durable=durable, **retry_policy_kwargs(retry_policy), **kwargs)
        check_create_inputs(patent_number, patent_id, report_type, templates_pending=True)
        # Checked now, not once the (paid) report is created and the wait begins.
        check_wait(poll_interval=poll_interval, timeout=timeout, tolerated_errors=tolerated_errors)
        self.patent_number = patent_number
        self.patent_id = patent_id
        self.report_type = report_type
        self.patsnap_conn_id = patsnap_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.tolerated_errors = tolerated_errors
        self.recreate_after_lost_answer = recreate_after_lost_answer
        self._job_id: JobId | None = None  # this try's job, once known (created or reconnected to)

    @cached_property
    def hook(self) -> PatsnapHook:
        return PatsnapHook(self.patsnap_conn_id)

    @property
    def patent(self) -> str:
        return str(self.patent_number or self.patent_id)

    def execute(self, context: Context) -> str:
        # Templates are rendered now: checked whole before anything is paid for.
        check_create_inputs(self.patent_number, self.patent_id, self.report_type)
        self._job_id = None
        # What execute_resumable returns is not the job id on every path (a reconnect returns nothing):
        # poll_until_complete and get_job_result record it in self._job_id.
        self.execute_resumable(context)
        if self._job_id is None:  # pragma: no cover - every path of the mixin passes through one of them
            raise PatsnapReportError("the report job's id was lost between create and wait")
        _forget(self._state(context), self.external_id_key, self.attempt_key)
        return str(self._job_id)

    # --- ResumableJobMixin ---------------------------------------------------------------------------

    def submit_job(self, context: Context) -> str:
        """Create the job (paid): see :meth:`_create`."""
        return str(self._create(self._state(context)))

    def get_job_status(self, external_id: Any, context: Context) -> str:
        """The status of the job an earlier try created (``WAITING``, ``EXPORTING``, ``DONE`` or
        ``FAILED``); a status PatSnap does not document raises. A failed job is forgotten now: the next
        create replaces it."""
        job = self.hook.get_report_state(JobId.parse(external_id))
        if job.status is ReportStatus.FAILED:
            self.log.warning(
                "Report job %s of an earlier try failed (%s): creating a new one",
                job.job_id,
                job.abnormal_cause,
            )
            self._state(context).delete(self.external_id_key)
        else:
            self.log.info("Reconnecting to PatSnap report job %s created by an earlier try", job.job_id)
        return job.status.name

    def is_job_active(self, status: str) -> bool:
        return status in {active.name for active in ACTIVE_STATUSES}

    def is_job_succeeded(self, status: str) -> bool:
        return status == ReportStatus.DONE.name

    def poll_until_complete(self, external_id: Any, context: Context) -> None:
        """Announce the job, then wait for it if asked to: in the triggerer when ``deferrable``, else on
        this worker."""
        job_id = self._announce(external_id, context)
        if not self.wait_for_completion:
            return
        if self.deferrable:
            trigger = PatsnapReportTrigger(
                job_id=job_id,
                end_time=time.time() + self.timeout,
                patsnap_conn_id=self.patsnap_conn_id,
                poll_interval=self.poll_interval,
                tolerated_errors=self.tolerated_errors,
            )
            self.defer(trigger=trigger, method_name="execute_complete")
        self.hook.wait_for_report(
            job_id,
            poll_interval=self.poll_interval,
            timeout=self.timeout,
            tolerated_errors=self.tolerated_errors,
        )

    def get_job_result(self, external_id: Any, context: Context) -> str:
        """The job id: the task's result (a finished job an earlier try created is returned as is)."""
        return str(self._announce(external_id, context))

    # -------------------------------------------------------------------------------------------------

    def _state(self, context: Context) -> Any:
        """Where this task instance's attempt and job id live: nowhere when not ``durable``; else Airflow
        3.3's task state store, or an Airflow Variable before 3.3 (the store the mixin uses)."""
        return task_state(context) if self.durable else _NO_STATE

    def _announce(self, external_id: Any, context: Context) -> JobId:
        """This try's job is known: push it to XCom, once per try, as text (key ``job_id``, as the
        return value) and inside an object (key ``report_job``), which Airflow 3.3's UI shows intact."""
        job_id = JobId.parse(external_id)
        if self._job_id != job_id:
            self._job_id = job_id
            ti = context["ti"]
            ti.xcom_push(key=JOB_ID_KEY, value=str(job_id))
            ti.xcom_push(key=REPORT_JOB_KEY, value=report_job(job_id, self.patent, str(self.report_type)))
        return job_id

    def _create(self, state: Any) -> JobId:
        """Create the job, with the attempt recorded just before the request goes out (after the token
        and the rate-limit wait): a lost answer is never a reason to pay twice, and a failure before
        sending (the token endpoint down, the task killed while waiting) is an ordinary one."""
        if state.get(self.attempt_key) and not self.recreate_after_lost_answer:
            raise PatsnapReportError(lost_create_message(self.patent, "recreate_after_lost_answer"))
        sent = False

        def record_attempt() -> None:
            nonlocal sent
            state.set(self.attempt_key, self.patent)
            sent = True

        try:
            job_id = self.hook.create_value_report(
                patent_id=self.patent_id,
                patent_number=self.patent_number,
                report_type=self.report_type,
                before_send=record_attempt,
            )
        except (PatsnapFailFastError, PatsnapRateLimitError):
            if sent:
                state.delete(self.attempt_key)  # PatSnap answered "no": nothing was created
            raise
        except Exception as err:
            if not sent:
                raise  # nothing reached PatSnap: Airflow's retries may create
            raise PatsnapReportError(
                f"{lost_create_message(self.patent, 'recreate_after_lost_answer')} (cause: {err})"
            ) from None
        self.log.info("Created PatSnap report job %s", job_id)
        # Stored here, before the attempt is cleared (the mixin stores it again): no moment exists in
        # which a crash would leave neither the job id nor the attempt behind.
        state.set(self.external_id_key, str(job_id))
        state.delete(self.attempt_key)
        return job_id

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """Resume after the trigger fired: return the job id, or raise the event's error."""
        done = validate_trigger_event(event)
        _forget(self._state(context), self.external_id_key, self.attempt_key)
        return str(done.job_id)

    def on_kill(self) -> None:
        self.hook.cancel()


class _NoState:
    """``durable=False``: nothing is read or kept."""

    def get(self, key: str, default: Any = None) -> Any:
        return default

    def set(self, key: str, value: Any) -> None:
        pass

    def delete(self, key: str) -> None:
        pass


_NO_STATE = _NoState()


def _forget(state: Any, *keys: str) -> None:
    """The task is done. Airflow 3.3's task state store keeps the job id (its own retention applies, and
    a clear-and-rerun reconnects to the paid job); the Variables used before 3.3 are deleted, so none is
    left behind (a clear-and-rerun there asks for a new report)."""
    if isinstance(state, VariableTaskState):
        for key in keys:
            state.delete(key)


def link_file_name(url: str) -> str:
    """The file name the link asks for (``response-content-disposition``), else its path's last part."""
    parts = urlsplit(url)
    disposition = (parse_qs(parts.query).get("response-content-disposition") or [""])[0]
    match = re.search(r"filename\*?\s*=\s*(?:UTF-8'')?\"?([^\";]+)", disposition, re.IGNORECASE)
    return unquote(match.group(1)) if match else PurePosixPath(unquote(parts.path)).name


def job_file_name(link_name: str, job_id: JobId, suffix: str) -> str:
    """The link's file name with the job id before its extension: a later report for the same patent,
    or a rerun, never overwrites an earlier file."""
    name = safe_file_name(link_name, f"patsnap_report{suffix}")
    stem, dot, extension = name.rpartition(".")
    return f"{stem}_{job_id}.{extension}" if dot and stem else f"{name}_{job_id}"


def safe_file_name(name: str, fallback: str) -> str:
    """Keep only the last path component, with unusual characters replaced: never leaves the target."""
    base = re.split(r"[\\/]", name)[-1]
    base = _UNSAFE_CHARS.sub("_", base).strip(" .")
    return base[-_MAX_NAME:] or fallback


def task_executor(task: Any) -> str:
    """The class name of the executor that runs ``task``: its own ``executor=`` when it names one of
    ``[core] executor``'s entries (alias or class), else the first entry, Airflow's default executor."""
    configured = [entry.strip() for entry in conf_get("core", "executor", "").split(",") if entry.strip()]
    wanted = getattr(task, "executor", None)
    chosen = next(
        (entry for entry in configured if wanted and wanted in (entry, *entry.split(":", 1))),
        wanted or (configured[0] if configured else "LocalExecutor"),
    )
    return chosen.split(":", 1)[-1].rsplit(".", 1)[-1]


def check_lasting_target(directory: Path | ObjectStoragePath, executor: str, allow_local: bool) -> None:
    """Refuse a folder on the worker's own disk when other executors than Local/Sequential run the task:
    on Celery the paid file would land on one worker, on Kubernetes it would vanish with the pod, and
    the run would still be green."""
    protocol = getattr(directory, "protocol", "") if isinstance(directory, ObjectStoragePath) else ""
    if allow_local or protocol not in LOCAL_PROTOCOLS or executor in ONE_MACHINE_EXECUTORS:
        return
    raise InvalidDestinationError(
        f"target {str(directory)!r} is on the disk of the worker that runs the download, and this "
        f"deployment's executor is {executor}: the paid report would stay on one worker (Celery) or vanish "
        "with its pod (Kubernetes). Give target an object storage URL or ObjectStoragePath "
        "(s3://aws_default@bucket/patsnap-reports/, gs://...), or set allow_local_target=True for a "
        "volume every worker and reader mounts at that path. Nothing was downloaded; the report's link "
        "lives 7 days, so clearing this task after the fix costs nothing"
    )


class PatsnapDownloadReportOperator(BaseOperator):
    """
    Download a finished PatSnap value report into a directory; return the file's path.

    A fresh status is fetched for the job, and its presigned link downloaded, streamed, with no PatSnap
    credentials sent to that host; the link is never logged or pushed to XCom. The file is named after
    the link's file name with the job id added (``patent_value_report_CN1A_<job_id>.pdf``), reduced to a
    plain name inside ``target``, so later reports and reruns never overwrite each other. It is written
    under a temporary name and moved into place, so a failed download leaves earlier files alone. A
    size mismatch with ``Content-Length`` fails the task. Links live 7 days: past that,
    the task fails saying to create a new report.

    A ``target`` on the worker's own disk (a plain path, ``file://``) is refused, before any call, when
    the task's executor is not LocalExecutor or SequentialExecutor (Celery, Kubernetes, ...): the file
    would stay on one worker or vanish with its pod. Use object storage, or ``allow_local_target=True``
    for a volume every worker mounts.

    :param job_id: The report job id, the create task's ``report_job`` XCom, or the status payload a
        ``PatsnapReportSensor`` returned (templated).
    :param target: A local directory, or an Airflow ``ObjectStoragePath`` or URL such as
        ``s3://bucket/reports/`` (templated). Created if missing.
    :param file_name: Use this file name instead of the link's name plus the job id (templated); made
        safe the same way. A later report downloaded under the same name replaces the file.
    :param patsnap_conn_id: The Airflow connection id (templated).
    :param retry_policy: Airflow 3.3+: the default fails what no retry can fix and retries rate limits
        after PatSnap's ``Retry-After`` (:mod:`airflow_provider_patsnap.retry`); ``None`` opts out.
    :param allow_local_target: Accept a local ``target`` whatever the executor: for a shared volume
        mounted at the same path on every worker (and wherever the files are read).
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
        retry_policy: Any = DEFAULT_RETRY_POLICY,
        allow_local_target: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**retry_policy_kwargs(retry_policy), **kwargs)
        self.job_id = job_id
        self.target = target
        self.file_name = file_name
        self.patsnap_conn_id = patsnap_conn_id
        self.allow_local_target = allow_local_target

    @cached_property
    def hook(self) -> PatsnapHook:
        return PatsnapHook(self.patsnap_conn_id)

    def _directory(self) -> Path | ObjectStoragePath:
        if isinstance(self.target, str) and "://" in self.target:
            return ObjectStoragePath(self.target)
        return self.target if isinstance(self.target, ObjectStoragePath) else Path(self.target)

    def execute(self, context: Context) -> str:
        directory = self._directory()
        check_lasting_target(directory, task_executor(self), self.allow_local_target)
        job = self.hook.get_report_state(job_id_of(self.job_id))
        if job.status is ReportStatus.FAILED:
            raise PatsnapReportError(job.failure_message())
        if job.status in ACTIVE_STATUSES or not job.download_url:
            raise PatsnapReportError(
                f"PatSnap report job {job.job_id} is not ready (job_status={job.status.name}): "
                "wait for it with PatsnapReportSensor first"
            )
        url = job.download_url
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / (
            safe_file_name(self.file_name, "report")
            if self.file_name
            else job_file_name(link_file_name(url), job.job_id, PurePosixPath(urlsplit(url).path).suffix)
        )
        # Written beside the target and moved into place: a failed download never destroys a report
        # an earlier run saved under the same name.
        partial = directory / f".{path.name}.{uuid.uuid4().hex}.part"
        try:
            with partial.open("wb") as handle:
                written, _ = self.hook.download(url, handle)
            if written == 0:
                raise PatsnapReportError(
                    f"report job {job.job_id} downloaded as an empty file; rerun the task"
                )
            partial.rename(path)  # type: ignore[arg-type]
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        self.log.info("Wrote %d bytes of report job %s to %s", written, job.job_id, public_url(str(path)))
        return str(path)

    def on_kill(self) -> None:
        self.hook.cancel()
