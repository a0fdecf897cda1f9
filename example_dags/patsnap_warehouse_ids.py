"""Awards for the patents a warehouse query selects (``SqlIds``), in mapped shards that share the QPS.

Requires the pool ``patsnap_api``; create it before the first run (``make demo`` does)::

    airflow pools set patsnap_api 2 "PatSnap API: 2 slots x 2.5 qps = vendor QPS 5"

A run that fails on its ``dagrun_timeout`` with its shards still ``scheduled`` usually means that pool
is missing: Airflow fails no task whose pool does not exist, and only the scheduler's log says why
("Tasks using non-existent pool 'patsnap_api' will not be scheduled"). Create the pool as above and
rerun.

The patent list lives in the warehouse, not in the DAG: here the active patents of one owner in a table
``patsnap_portfolio (patent_number, owner, active)``. Nothing is read when this file is parsed; each
mapped task runs the query when it starts, streams its rows (10,000 at a time; PostgreSQL through a
server-side cursor) and keeps the ids of its own shard, so no list of ids passes through XCom and no
task holds the whole list. Only the query's first column counts; ask for ``DISTINCT`` ids. The
placeholder in the query is the database driver's: ``?`` for SQLite, ``%s`` for PostgreSQL and MySQL.

Connections: ``patsnap_default`` (PatSnap, or the sandbox) and ``patsnap_warehouse``, which the query
reads and the rows land in (SQLite here, for example ``{"conn_type": "sqlite", "host":
"/abs/path/warehouse.db"}``; any common.sql database works, see ``patsnap_postgres_warehouse``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow_provider_patsnap.id_sources import SqlIds
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]

WAREHOUSE = "patsnap_warehouse"
POOL = "patsnap_api"
POOL_SLOTS = 2
VENDOR_QPS = 5.0  # the QPS PatSnap granted the client (and the connection's qps)
SHARDS = 2  # one per few hundred thousand ids in a real portfolio
RUN_TIMEOUT = timedelta(
    hours=1
)  # ends a run whose shards cannot start (a missing pool); size it for your list

with DAG(
    dag_id="patsnap_warehouse_ids",
    schedule="@weekly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,  # it calls a paid API: nothing runs until someone unpauses it
    dagrun_timeout=RUN_TIMEOUT,
    tags=["patsnap", "example"],
    doc_md=__doc__,
):
    # --8<-- [start:sql_ids]
    portfolio = SqlIds(
        WAREHOUSE,
        "SELECT DISTINCT patent_number FROM patsnap_portfolio WHERE owner = ? AND active = 1",
        ["acme"],
    )
    PatsnapAwardOperator.partial(
        task_id="awards",
        sql_conn_id=WAREHOUSE,  # the rows land beside the portfolio, in patsnap_award
        refresh_after="7d",  # a patent fetched in the last week is not paid for again
        pool=POOL,
        qps=VENDOR_QPS / POOL_SLOTS,
        map_index_template="{{ patsnap_ids }}",  # "shard 1/2: 148 ids" in the list of mapped tasks
    ).expand(patent_numbers=portfolio.shards(SHARDS))
    # --8<-- [end:sql_ids]
