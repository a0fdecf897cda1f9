"""Where a paid report may land: a worker's own disk only when every task runs on one machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_patsnap._compat import ObjectStoragePath
from airflow_provider_patsnap.exceptions import InvalidDestinationError
from airflow_provider_patsnap.operators.report import (
    PatsnapDownloadReportOperator,
    check_lasting_target,
    task_executor,
)

JOB_ID = "1579434053399036001"


def download(target: Any, **kwargs: Any) -> PatsnapDownloadReportOperator:
    return PatsnapDownloadReportOperator(task_id="download", job_id=JOB_ID, target=target, **kwargs)


@pytest.mark.parametrize(
    ("configured", "task_says", "expected"),
    [
        ("LocalExecutor", None, "LocalExecutor"),
        ("CeleryExecutor", None, "CeleryExecutor"),
        ("airflow.providers.celery.executors.celery_executor.CeleryExecutor", None, "CeleryExecutor"),
        ("KubernetesExecutor,LocalExecutor", None, "KubernetesExecutor"),  # the first is the default
        ("KubernetesExecutor,LocalExecutor", "LocalExecutor", "LocalExecutor"),
        ("CeleryExecutor,fast:my.module.LocalExecutor", "fast", "LocalExecutor"),  # an alias
    ],
)
def test_the_executor_is_the_tasks_own_or_the_deployments_default(
    monkeypatch: pytest.MonkeyPatch, configured: str, task_says: str | None, expected: str
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", configured)

    class Task:
        executor = task_says

    assert task_executor(Task()) == expected


@pytest.mark.parametrize("executor", ["LocalExecutor", "SequentialExecutor"])
@pytest.mark.parametrize("target", [Path("/data/reports"), ObjectStoragePath("file:///data/reports")])
def test_a_local_folder_is_accepted_where_every_task_runs_on_one_machine(executor: str, target: Any) -> None:
    check_lasting_target(target, executor, allow_local=False)


@pytest.mark.parametrize("executor", ["CeleryExecutor", "KubernetesExecutor", "EdgeExecutor"])
@pytest.mark.parametrize(
    "target", [Path("/data/reports"), ObjectStoragePath("file:///data/reports"), Path("reports")]
)
def test_a_local_folder_is_refused_where_tasks_run_on_many_machines(executor: str, target: Any) -> None:
    with pytest.raises(InvalidDestinationError, match=rf"executor is {executor}.*allow_local_target=True"):
        check_lasting_target(target, executor, allow_local=False)
    check_lasting_target(target, executor, allow_local=True)  # a volume every worker mounts


def test_object_storage_is_accepted_on_any_executor() -> None:
    check_lasting_target(ObjectStoragePath("s3://aws_default@bucket/reports/"), "CeleryExecutor", False)


def test_the_download_refuses_before_any_call(
    monkeypatch: pytest.MonkeyPatch, requests_mock: Any, tmp_path: Path
) -> None:
    """Nothing is asked of PatSnap (requests-mock answers no URL) and nothing is written."""
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with pytest.raises(InvalidDestinationError, match=r"CeleryExecutor.*Nothing was downloaded"):
        download(str(tmp_path / "reports")).execute({})
    with pytest.raises(InvalidDestinationError):
        download(f"file://{tmp_path}/reports").execute({})
    assert requests_mock.call_count == 0
    assert list(tmp_path.iterdir()) == []
