"""A create task that fails its first try after PatSnap created the job, as a worker lost mid-task would."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow_provider_patsnap.operators.report import PatsnapCreateValueReportOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG


class LostAfterCreate(PatsnapCreateValueReportOperator):
    def poll_until_complete(self, external_id: Any, context: Any) -> Any:
        if context["ti"].try_number == 1:
            raise RuntimeError("worker lost after the report job was created")
        return super().poll_until_complete(external_id, context)


with DAG("patsnap_report_retry", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    LostAfterCreate(task_id="create_report", patent_number="CN1", retries=1, retry_delay=timedelta(seconds=0))
