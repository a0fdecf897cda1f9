"""A report create with retries=1 whose first answer is lost on the way (the sandbox drops it)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow_provider_patsnap.operators.report import PatsnapCreateValueReportOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG


with DAG("patsnap_report_lost_answer", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    PatsnapCreateValueReportOperator(
        task_id="create_report", patent_number="CN1", retries=1, retry_delay=timedelta(seconds=0)
    )
