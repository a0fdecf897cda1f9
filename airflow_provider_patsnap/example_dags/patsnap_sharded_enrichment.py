"""Enrichment of a large patent list in mapped shards that share the vendor's QPS through a pool.

Requires the pool ``patsnap_api``; create it before the first run (``make demo`` does)::

    airflow pools set patsnap_api 2 "PatSnap API: 2 slots x 2.5 qps = vendor QPS 5"

A run that fails on its ``dagrun_timeout`` with its shards still ``scheduled`` usually means that pool
is missing: Airflow fails no task whose pool does not exist, and only the scheduler's log says why
("Tasks using non-existent pool 'patsnap_api' will not be scheduled"). Create the pool as above and
rerun.

A task cannot look pools up on Airflow 3, so the DAG cannot check for the pool itself: the
``dagrun_timeout`` (``RUN_TIMEOUT``) is what turns a forgotten pool into a failed run rather than one
that waits forever. Size it for your list.

One task holds at most 100 ids in flight per call and stays within its ``qps``; for lists that
outgrow one worker, split the list into shards and map one task per shard with
``.partial(...).expand(patent_numbers=shards)``. The shards run in the pool ``patsnap_api``, so::

    pool slots × per-task qps ≤ the QPS PatSnap granted your client

With the vendor's QPS of 5: 2 slots and ``qps=2.5`` per task (2 × 2.5 = 5). Were the shards in no
pool, every shard would run at once and the vendor would answer 67200002 (calling too fast); the hook
retries those, but the run slows down. Rows are upserted on their key, so a retried or rerun shard leaves
no duplicates.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]
    from airflow.decorators import task  # type: ignore[no-redef]

PATENT_LIST = Path(__file__).parent / "data" / "patents.csv"
POOL = "patsnap_api"
POOL_SLOTS = 2
VENDOR_QPS = 5.0
SHARD_SIZE = 100  # ids per shard; a real list would use tens of thousands
RUN_TIMEOUT = timedelta(hours=1)  # this list takes about a minute; the run fails after this

with DAG(
    dag_id="patsnap_sharded_enrichment",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    dagrun_timeout=RUN_TIMEOUT,
    tags=["patsnap", "example"],
    doc_md=__doc__,
):

    @task
    def shard_patent_list() -> list[list[str]]:
        """The shipped list cut into shards of ``SHARD_SIZE`` patent numbers."""
        with PATENT_LIST.open(encoding="utf-8", newline="") as handle:
            numbers = [row["patent_number"].strip() for row in csv.DictReader(handle) if row["patent_number"]]
        return [numbers[start : start + SHARD_SIZE] for start in range(0, len(numbers), SHARD_SIZE)]

    # --8<-- [start:shards]
    PatsnapLegalInformationOperator.partial(
        task_id="legal_information",
        sql_conn_id="patsnap_warehouse",
        pool=POOL,
        qps=VENDOR_QPS / POOL_SLOTS,
    ).expand(patent_numbers=shard_patent_list())
    # --8<-- [end:shards]
