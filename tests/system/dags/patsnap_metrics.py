"""One data task of 250 patents into SQLite: its metrics are read by a UDP listener (test_metrics.py)."""

from __future__ import annotations

from datetime import datetime

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG


with DAG("patsnap_metrics", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    PatsnapLegalInformationOperator(
        task_id="legal",
        patent_numbers=[f"CN{100000000 + i}A" for i in range(250)],
        sql_conn_id="metrics_warehouse",
    )
