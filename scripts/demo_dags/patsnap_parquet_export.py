"""make demo's Parquet step: P026 legal events of the shipped patent list into one Parquet file per day.

Not an example DAG (the package does not ship it): ``make demo`` runs it with ``airflow dags test`` from
this folder against the sandbox, then reads the file with DuckDB. The file goes under
``$PATSNAP_DEMO_OUTPUT`` (``/tmp/patsnap-demo`` when unset): ``legal/<ds>.parquet``.
"""

from __future__ import annotations

import csv
import os
from datetime import datetime
from pathlib import Path

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]

import airflow_provider_patsnap

PATENT_LIST = Path(airflow_provider_patsnap.__file__).parent / "example_dags" / "data" / "patents.csv"
OUTPUT = os.environ.get("PATSNAP_DEMO_OUTPUT", "/tmp/patsnap-demo")

with PATENT_LIST.open(encoding="utf-8", newline="") as handle:
    PATENTS = [row["patent_number"].strip() for row in csv.DictReader(handle) if row["patent_number"]]

with DAG(
    dag_id="patsnap_parquet_export",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["patsnap", "demo"],
):
    PatsnapLegalInformationOperator(
        task_id="legal_events",
        patent_numbers=PATENTS,
        output_path=f"{OUTPUT}/legal/{{{{ ds }}}}.parquet",  # Parquet: the name ends in .parquet
    )
