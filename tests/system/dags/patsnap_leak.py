"""One data task against a vendor that echoes the credentials it was sent (tests/system/test_cli.py)."""

from __future__ import annotations

from datetime import datetime

from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG


with DAG("patsnap_leak", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    PatsnapAwardOperator(task_id="awards", patent_numbers=["CN110650438A", "US10123456B2"])
