"""Daily enrichment of a patent list with four PatSnap data APIs, landed in a SQLite warehouse.

Requires the pool ``patsnap_api``; create it before the first run (``make demo`` does)::

    airflow pools set patsnap_api 2 "PatSnap API: 2 slots x 2.5 qps = vendor QPS 5"

A run that fails on its ``dagrun_timeout`` with its four PatSnap tasks still ``scheduled`` usually
means that pool is missing: Airflow fails no task whose pool does not exist, and only the scheduler's
log says why ("Tasks using non-existent pool 'patsnap_api' will not be scheduled"). Create the pool as
above and rerun.

The pool lets two of the PatSnap tasks run at once, each at half the vendor's QPS, so together they never
call faster than PatSnap allows: pool slots × per-task qps = the QPS (docs/performance.md).

Connections: ``patsnap_default`` (PatSnap, or the sandbox: ``make sandbox``) and ``patsnap_warehouse``
(for example ``{"conn_type": "sqlite", "host": "/abs/path/warehouse.db"}``). ``make demo`` runs it.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.common.sql.operators.sql import SQLCheckOperator

from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.operators.patsnap import (
    PatsnapAwardOperator,
    PatsnapCustomsRecordOperator,
    PatsnapLegalInformationOperator,
    PatsnapSeicClassificationOperator,
)

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]
    from airflow.decorators import task  # type: ignore[no-redef]

PATENT_LIST = Path(__file__).parent / "data" / "patents.csv"
WAREHOUSE = "patsnap_warehouse"
POOL = "patsnap_api"
POOL_SLOTS = 2
VENDOR_QPS = 5.0  # the QPS PatSnap granted the client (and the connection's qps)
# The shipped list (300 patents) is 3 calls per PatSnap task: even at the vendor's worst 10 s a call a run
# needs minutes, so the hour ends only a run whose tasks cannot start (a missing pool). Size it for your list.
RUN_TIMEOUT = timedelta(hours=1)

with DAG(
    dag_id="patsnap_enrichment",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,  # it calls a paid API: nothing runs until someone unpauses it
    dagrun_timeout=RUN_TIMEOUT,
    tags=["patsnap", "example"],
    doc_md=__doc__,
):

    @task
    def read_patent_list() -> list[str]:
        """The patent numbers of the shipped list (one ``patent_number`` column)."""
        with PATENT_LIST.open(encoding="utf-8", newline="") as handle:
            return [row["patent_number"].strip() for row in csv.DictReader(handle) if row["patent_number"]]

    # --8<-- [start:operators]
    patent_numbers = read_patent_list()
    common = {
        "patent_numbers": patent_numbers,
        "sql_conn_id": WAREHOUSE,
        "pool": POOL,
        "qps": VENDOR_QPS / POOL_SLOTS,
    }
    enrich = [
        PatsnapSeicClassificationOperator(task_id="seic_classification", lang="en", **common),
        PatsnapAwardOperator(task_id="award", **common),
        PatsnapCustomsRecordOperator(task_id="customs_record", **common),
        PatsnapLegalInformationOperator(task_id="legal_information", **common),
    ]
    # --8<-- [end:operators]
    # SQLCheckOperator fails when any value of the first row is falsy: here, any empty table.
    counts = ", ".join(
        f"(SELECT COUNT(*) FROM {code.default_table}) AS {code.name}" for code in ENDPOINTS.values()
    )
    check_row_counts = SQLCheckOperator(task_id="check_row_counts", conn_id=WAREHOUSE, sql=f"SELECT {counts}")
    enrich >> check_row_counts
