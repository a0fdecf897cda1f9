"""The example DAG end to end with the real ``airflow dags test`` (the trigger runs inline) against the sandbox."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_patsnap._compat import AIRFLOW_V_3, HAS_RESUMABLE_JOBS
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sandbox.reports import report_bytes
from tests.helpers import (
    EXAMPLE_DAGS,
    STATUS_PATH,
    airflow,
    airflow_env,
    creates,
    finish_report_jobs_once_polled,
)

PN = "CN108977442B"


def metadata(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "airflow-home" / "airflow.db")


def xcom(tmp_path: Path, task_id: str, key: str) -> Any:
    """The XCom value a task left, decoded as Airflow stores it (JSON)."""
    with metadata(tmp_path) as db:
        [(value,)] = db.execute("SELECT value FROM xcom WHERE task_id = ? AND key = ?", (task_id, key))
    return json.loads(value if isinstance(value, str) else bytes(value).decode())  # 2.11: a JSON blob


def report_env(tmp_path: Path, dags: Path, sandbox: Sandbox) -> dict[str, str]:
    return airflow_env(
        tmp_path / "airflow-home",
        dags,
        AIRFLOW_CONN_PATSNAP_DEFAULT=sandbox.connection_json(max_retries=2),
        PATSNAP_REPORT_POLL_SECONDS="0.5",
    )


def test_dags_test_runs_create_wait_download(start_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = start_sandbox(report_delay=3600)  # no job finishes by itself: the sensor's first check defers
    finish_report_jobs_once_polled(sandbox)  # the job is done once that check was answered
    env = report_env(tmp_path, EXAMPLE_DAGS, sandbox)
    # An object storage URL (file:// here, s3://... in a deployment): what the example asks for.
    conf = json.dumps({"patent_number": PN, "report_dir": (tmp_path / "reports").as_uri()})
    run = airflow(["dags", "test", "patsnap_value_report", "-c", conf], env)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert re.search(r"running trigger in ?line", output, re.IGNORECASE), "the sensor did not defer"

    [report] = (tmp_path / "reports").iterdir()
    # The job id went create → XCom → sensor → XCom → download and came back exact: the status calls
    # carried it, and the file the download host made for that job has exactly the expected bytes.
    job_ids = {record.params["job_id"] for record in sandbox.requests if record.path == STATUS_PATH}
    [job_id] = job_ids
    assert re.fullmatch(r"\d{19}", job_id)
    assert report.name == f"patent_value_report_{PN}_{job_id}.pdf"
    assert report.read_bytes() == report_bytes(job_id, PN, "pdf")
    assert creates(sandbox) == 1
    assert sandbox.config.client_secret not in output
    # The create task's job id, as XCom keeps it and as Airflow's REST API (the UI's source) gives it.
    report_job = {"job_id": job_id, "patent": PN, "report_type": "pdf"}
    assert (
        xcom(tmp_path, "create_report", "return_value") == xcom(tmp_path, "create_report", "job_id") == job_id
    )
    assert xcom(tmp_path, "create_report", "report_job") == report_job
    if AIRFLOW_V_3:
        shown = rest_xcom_values(tmp_path, env, "patsnap_value_report", "create_report")
        # A bare string of digits leaves the API as a JSON number, which JavaScript (the UI) rounds...
        assert shown["return_value"] == shown["job_id"] == int(job_id)
        assert int(float(job_id)) != int(job_id)
        # ...while inside an object it stays text.
        assert shown["report_job"] == report_job


# What Airflow 3.3's UI asks its REST API for an XCom value (deserialize=true, stringify=false), here
# through the API app in-process: the raw JSON each key's value arrives as.
REST_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from sqlalchemy import select
from airflow.api_fastapi.app import create_app
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session

dag_id, task_id = sys.argv[1:3]
with create_session() as session:
    run_id = session.scalar(select(DagRun.run_id).where(DagRun.dag_id == dag_id))
client = TestClient(create_app())
shown = {}
for key in ("return_value", "job_id", "report_job"):
    answer = client.get(
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
        params={"deserialize": True, "stringify": False},
    )
    assert answer.status_code == 200, answer.text
    shown[key] = json.loads(answer.text)["value"]
print("XCOM " + json.dumps(shown))
"""


def rest_xcom_values(tmp_path: Path, env: dict[str, str], dag_id: str, task_id: str) -> dict[str, Any]:
    probe = subprocess.run(
        [sys.executable, "-c", REST_PROBE, dag_id, task_id],
        env={**env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr[-3000:]
    [line] = [line for line in probe.stdout.splitlines() if line.startswith("XCOM ")]
    return dict(json.loads(line.removeprefix("XCOM ")))


def test_a_real_retry_of_the_create_task(start_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    """Airflow 3.3+ reconnects through its own ResumableJobMixin and task state store, older lines
    through the provider's equivalent and a Variable: one job, and its id is the retry's result."""
    sandbox = start_sandbox(report_delay=60)  # still exporting when the retry asks: it must reconnect
    env = report_env(tmp_path, Path(__file__).parent / "dags", sandbox)
    run = airflow(["dags", "test", "patsnap_report_retry"], env)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    assert "worker lost after the report job was created" in output
    assert creates(sandbox) == 1
    [job_id] = {record.params["job_id"] for record in sandbox.requests if record.path == STATUS_PATH}
    assert f"Reconnecting to PatSnap report job {job_id} created by an earlier try" in output
    # Airflow 3.3's mixin returns nothing on a reconnect: the operator still returns (and pushes) the id.
    assert xcom(tmp_path, "create_report", "return_value") == job_id
    assert xcom(tmp_path, "create_report", "job_id") == job_id
    if HAS_RESUMABLE_JOBS:
        assert "Reconnecting to existing job" in output  # the mixin's own decision
        with metadata(tmp_path) as db:
            stored = db.execute("SELECT key, value FROM task_state_store WHERE task_id = 'create_report'")
            assert [(key, json.loads(value)) for key, value in stored] == [("patsnap_report_job_id", job_id)]
    leftovers = airflow(["variables", "list", "-o", "plain"], env)
    assert leftovers.returncode == 0, leftovers.stderr
    assert "patsnap_task_state" not in leftovers.stdout  # none used on 3.3; forgotten on success before


def test_a_lost_create_answer_is_not_paid_again_by_airflows_retry(
    start_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """0.1 raised a transient error here: Airflow retried the task and paid for a second report."""
    sandbox = start_sandbox(report_delay=60)
    sandbox.lose_create_answers(1)
    env = report_env(tmp_path, Path(__file__).parent / "dags", sandbox)
    run = airflow(["dags", "test", "patsnap_report_lost_answer"], env)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-5000:]  # the task failed, and said why
    assert "may have been created and paid" in output, output[-5000:]
    assert sandbox.report_jobs_created == 1
    assert creates(sandbox) == 1  # Airflow's retry (retries=1) did not run it again
