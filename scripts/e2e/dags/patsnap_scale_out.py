"""``make e2e-celery``'s DAGs: a PostgreSQL portfolio in 16 mapped shards, two ways, and a report.

``patsnap_scale_shared`` is the recipe of docs/performance.md ("One QPS across a deployment"): the
connection ``patsnap_shared`` names a Redis connection in its ``rate_limit_redis_conn_id`` extra, so
every shard, on whichever worker, takes its calls from one schedule at the connection's ``qps``; no
pool, no per-task ``qps``. ``patsnap_scale_pool`` is the same work with the pool arithmetic instead:
the connection ``patsnap_pool`` has no Redis, and the shards run in the pool ``patsnap_api`` of
``E2E_POOL_SLOTS`` slots, each at ``qps = the connection's qps / slots``.

``patsnap_scale_report`` creates a value report, waits for it and writes the file to object storage (an
``s3://`` path through the ``aws`` connection ``e2e_s3``), so nothing a task writes needs a disk the
workers share. ``patsnap_scale_warmup`` runs one task in every worker slot first, so that both measured
runs start on warm workers (a Celery worker process's first task pays for importing Airflow's task
runner: about 9 s a shard with 16 starting at once on 2 cores).

The ids come from the warehouse (``SqlIds`` over ``portfolio``): with ``id_column`` the database keeps
each shard's rows (PostgreSQL's ``hashtext``), and the shard streams them through a server-side cursor;
only 16 small JSON specs pass through XCom.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from airflow_provider_patsnap.id_sources import SqlIds
from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator
from airflow_provider_patsnap.operators.report import (
    PatsnapCreateValueReportOperator,
    PatsnapDownloadReportOperator,
)
from airflow_provider_patsnap.sensors.patsnap import PatsnapReportSensor

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]
    from airflow.decorators import task  # type: ignore[no-redef]

SHARDS = 16
WORKER_SLOTS = int(os.environ.get("E2E_WORKER_SLOTS", "18"))  # both workers' concurrency together
CLIENT_QPS = float(os.environ.get("E2E_CLIENT_QPS", "20"))  # the connections' qps
# --8<-- [start:portfolio]
PORTFOLIO = SqlIds("patsnap_warehouse", "SELECT patent_number FROM portfolio", id_column="patent_number")
# --8<-- [end:portfolio]
POOL = "patsnap_api"
POOL_SLOTS = int(os.environ.get("E2E_POOL_SLOTS", str(SHARDS)))
REPORT_TARGET = os.environ.get("E2E_REPORT_TARGET", "s3://e2e_s3@patsnap-reports/value-reports/")
RUN_TIMEOUT = timedelta(minutes=10)

COMMON = {
    "schedule": None,
    "start_date": datetime(2024, 1, 1),
    "catchup": False,
    "dagrun_timeout": RUN_TIMEOUT,
    "tags": ["patsnap", "e2e"],
}

with DAG(dag_id="patsnap_scale_shared", max_active_tasks=SHARDS, doc_md=__doc__, **COMMON):
    # --8<-- [start:shared]
    PatsnapLegalInformationOperator.partial(
        task_id="legal_information",
        patsnap_conn_id="patsnap_shared",  # extra: {"qps": ..., "rate_limit_redis_conn_id": "patsnap_redis"}
        sql_conn_id="patsnap_warehouse",
        table="legal_shared",
        map_index_template="{{ patsnap_ids }}",
    ).expand(patent_numbers=PORTFOLIO.shards(SHARDS))
    # --8<-- [end:shared]

with DAG(dag_id="patsnap_scale_pool", max_active_tasks=SHARDS, doc_md=__doc__, **COMMON):
    PatsnapLegalInformationOperator.partial(
        task_id="legal_information",
        patsnap_conn_id="patsnap_pool",
        sql_conn_id="patsnap_warehouse",
        table="legal_pool",
        pool=POOL,
        qps=CLIENT_QPS / POOL_SLOTS,
        map_index_template="{{ patsnap_ids }}",
    ).expand(patent_numbers=PORTFOLIO.shards(SHARDS))

with DAG(dag_id="patsnap_scale_report", doc_md=__doc__, **COMMON):
    create_report = PatsnapCreateValueReportOperator(
        task_id="create_report", patent_number="CN108977442B", patsnap_conn_id="patsnap_shared", retries=2
    )
    # No triggerer in this deployment: the sensor pokes on a worker, through the same shared limiter.
    wait_for_report = PatsnapReportSensor(
        task_id="wait_for_report",
        job_id=create_report.output,
        patsnap_conn_id="patsnap_shared",
        deferrable=False,
        poke_interval=2,
        timeout=300,
    )
    PatsnapDownloadReportOperator(
        task_id="download_report",
        job_id=wait_for_report.output,
        target=REPORT_TARGET,
        patsnap_conn_id="patsnap_shared",
    )

with DAG(dag_id="patsnap_scale_warmup", max_active_tasks=WORKER_SLOTS, doc_md=__doc__, **COMMON):

    @task
    def warm_up(slot: int) -> int:
        # Held a moment, so that every worker process gets one of these rather than one process many.
        time.sleep(3)
        return slot

    warm_up.expand(slot=list(range(WORKER_SLOTS)))
