"""Patent value report (PatSnap R002) for one patent: create the job, wait for it, download the file.

The wait runs in the triggerer (``deferrable=True``), so no worker slot is held while PatSnap builds the
report (1-10 minutes). Trigger a run with another patent or folder through the DAG params, for example
``airflow dags test patsnap_value_report -c '{"patent_number": "CN108977442B", "report_dir": "/data"}'``.
``PATSNAP_REPORT_POLL_SECONDS`` sets the polling interval (30 s by default; tests use less).
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
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

POLL_SECONDS = float(os.environ.get("PATSNAP_REPORT_POLL_SECONDS", "30"))
# Reports are paid for: keep them somewhere that outlives a reboot (not /tmp). In production, point
# report_dir at object storage (s3://bucket/patsnap-reports/) or a shared volume.
REPORT_DIR = os.path.join(os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")), "patsnap-reports")

with DAG(
    dag_id="patsnap_value_report",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
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
        target="{{ params.report_dir }}",
    )
    # --8<-- [end:report_tasks]
