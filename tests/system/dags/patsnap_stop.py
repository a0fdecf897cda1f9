"""One data task into SQLite against a vendor that answers a few calls, then every call "too fast, retry
after 30 s": it is stopped, and keeps what it wrote."""

from __future__ import annotations

from datetime import datetime

from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG


with DAG("patsnap_stop", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    PatsnapAwardOperator(
        task_id="awards",
        patent_numbers=[f"CN{100000000 + i}A" for i in range(2000)],
        sql_conn_id="stop_warehouse",
        table="awards",
        write_mode="merge",
    )
