"""A DAG scheduled on a table's Asset URI itself (``PATSNAP_TABLE_URI``, the postgres provider's form in
the test), not on the alias the PatSnap task declares: it must run after the sync all the same."""

from __future__ import annotations

import os
from datetime import datetime

try:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, Asset
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.datasets import Dataset as Asset
    from airflow.operators.empty import EmptyOperator

TABLE_URI = os.environ.get(
    "PATSNAP_TABLE_URI", "postgres://localhost:5432/warehouse/public/patsnap_legal_daily"
)

with DAG(
    "patsnap_table_consumer",
    schedule=[Asset(TABLE_URI)],
    start_date=datetime(2024, 1, 1),
    catchup=False,
):
    EmptyOperator(task_id="table_updated")
