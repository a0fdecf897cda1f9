"""Patent value report (PatSnap R002) for one patent: create the job, wait for it, download the file.

A report is paid for, so its file must land where it lasts and where you will look for it. The run asks
for ``report_dir`` (it has no default): an object storage URL every worker can write to, for example::

    airflow dags trigger patsnap_value_report \\
        -c '{"patent_number": "CN108977442B", "report_dir": "s3://aws_default@my-bucket/patsnap-reports/"}'

``s3://`` needs the Amazon provider (``apache-airflow-providers-amazon[s3fs]``) and the AWS connection
named before the ``@``; any Airflow object storage works (``gs://``, ``abfs://``, ...). A folder on the
worker's own disk (``/data/reports``, ``file:///data/reports``) is refused before the download when the
executor is not LocalExecutor or SequentialExecutor: on Celery the file would stay on one worker, on
Kubernetes it would vanish with the pod (docs/report.md, "Where files go").

The wait runs in the triggerer (``deferrable=True``), so no worker slot is held while PatSnap builds the
report (1-10 minutes). ``PATSNAP_REPORT_POLL_SECONDS`` sets the polling interval (30 s by default; tests
use less).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow_provider_patsnap.operators.report import (
    PatsnapCreateValueReportOperator,
    PatsnapDownloadReportOperator,
)
from airflow_provider_patsnap.sensors.patsnap import PatsnapReportSensor

try:
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.models.param import Param

POLL_SECONDS = float(os.environ.get("PATSNAP_REPORT_POLL_SECONDS", "30"))
# No default: a run that was not told where the paid file goes does not start (and pays nothing).
REPORT_DIR = Param(
    type="string",
    minLength=1,
    description="Where the report goes: object storage, e.g. s3://aws_default@my-bucket/patsnap-reports/",
)

with DAG(
    dag_id="patsnap_value_report",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,  # it calls a paid API: nothing runs until someone unpauses it
    params={"patent_number": "CN108977442B", "report_type": "pdf", "report_dir": REPORT_DIR},
    tags=["patsnap", "example"],
    doc_md=__doc__,
):
    # --8<-- [start:report_tasks]
    create_report = PatsnapCreateValueReportOperator(
        task_id="create_report",
        patent_number="{{ params.patent_number }}",
        report_type="{{ params.report_type }}",
        retries=2,  # a retry never pays for a second report: see docs/report.md
    )
    wait_for_report = PatsnapReportSensor(
        task_id="wait_for_report",
        job_id=create_report.output,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=3600,
    )
    download_report = PatsnapDownloadReportOperator(
        task_id="download_report",
        job_id=wait_for_report.output,
        target="{{ params.report_dir }}",  # a URL becomes an ObjectStoragePath; created if missing
    )
    # --8<-- [end:report_tasks]
