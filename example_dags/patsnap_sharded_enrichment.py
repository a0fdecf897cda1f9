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
outgrow one worker, map one task per shard of the list: ``FileIds(...).shards(n)`` (or ``SqlIds``'s) gives
``n`` small specs, and each mapped task reads the file and keeps its own ids, so no list of ids passes
through XCom. The shards run in the pool ``patsnap_api``, so::

    pool slots × per-task qps ≤ the QPS PatSnap granted your client

With the vendor's QPS of 5: 2 slots and ``qps=2.5`` per task (2 × 2.5 = 5). Were the shards in no
pool, every shard would run at once and the vendor would answer 67200002 (calling too fast); the hook
retries those, but the run slows down. Rows are upserted on their key, so a retried or rerun shard leaves
no duplicates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow_provider_patsnap.id_sources import FileIds
from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]

PATENT_LIST = Path(__file__).parent / "data" / "patents.csv"
POOL = "patsnap_api"
POOL_SLOTS = 2
VENDOR_QPS = 5.0
SHARDS = 3  # a real portfolio would use one shard per few hundred thousand ids
RUN_TIMEOUT = timedelta(hours=1)  # this list takes about a minute; the run fails after this

with DAG(
    dag_id="patsnap_sharded_enrichment",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,  # it calls a paid API: nothing runs until someone unpauses it
    dagrun_timeout=RUN_TIMEOUT,
    tags=["patsnap", "example"],
    doc_md=__doc__,
):
    # --8<-- [start:shards]
    PatsnapLegalInformationOperator.partial(
        task_id="legal_information",
        sql_conn_id="patsnap_warehouse",
        pool=POOL,
        qps=VENDOR_QPS / POOL_SLOTS,
        map_index_template="{{ patsnap_ids }}",  # "shard 2/3: 97 ids" in the UI's list of mapped tasks
    ).expand(patent_numbers=FileIds(str(PATENT_LIST), column="patent_number").shards(SHARDS))
    # --8<-- [end:shards]
