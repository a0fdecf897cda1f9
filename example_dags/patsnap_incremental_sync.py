"""Daily legal events kept true in a SQLite table, paying only for what is stale, and a DAG that follows it.

Requires the pool ``patsnap_api``; create it before the first run (``make demo`` does)::

    airflow pools set patsnap_api 2 "PatSnap API: 2 slots x 2.5 qps = vendor QPS 5"

A run of ``patsnap_incremental_sync`` that fails on its ``dagrun_timeout`` with ``legal_events`` still
``scheduled`` usually means that pool is missing: Airflow fails no task whose pool does not exist, and
only the scheduler's log says why ("Tasks using non-existent pool 'patsnap_api' will not be
scheduled"). Create the pool as above and rerun.

``patsnap_incremental_sync`` runs daily. Its ``sync`` write mode makes each fetched patent's rows exactly
what PatSnap returns now (events PatSnap dropped are deleted, a patent with no data any more loses its
rows); ``refresh_after="7d"`` skips patents fetched less than a week ago, with data or without. The first
run fetches the whole list, so every patent goes stale on the same day: about once a week a run pays for
the whole list again, and the runs in between pay only for patents new to the list. ``max_billed_units``
stops a run before it could be billed more than that (a rerun resumes).

``emit_asset=True`` declares an asset alias,
``patsnap:patsnap_incremental_sync.legal_events:patsnap_warehouse/patsnap_legal_daily``, and each
successful run attaches the table to it as an Asset under the URI its OpenLineage output has
(docs/lineage.md): ``patsnap_incremental_report`` is scheduled on that alias and runs after every
successful sync. A DAG elsewhere can be scheduled on the table's URI
itself (``sqlite:/abs/path/warehouse.db/patsnap_legal_daily`` here; for PostgreSQL the postgres
provider's ``postgres://host:5432/database/public/patsnap_legal_daily``) and then also follows any other
producer of the same table.

Nothing here reads a connection when the file is parsed: it loads in a deployment that has none. The
sync needs ``patsnap_warehouse`` (for example ``{"conn_type": "sqlite", "host": "/abs/path/warehouse.db"}``)
and ``patsnap_default`` (PatSnap, or the sandbox) when it runs. ``make demo`` runs the sync twice to show
the second run paying for nothing it already has.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.common.sql.operators.sql import SQLCheckOperator

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]
    from airflow.decorators import task  # type: ignore[no-redef]

PATENT_LIST = Path(__file__).parent / "data" / "patents.csv"
WAREHOUSE = "patsnap_warehouse"
TABLE = "patsnap_legal_daily"
POOL = "patsnap_api"
POOL_SLOTS = 2
VENDOR_QPS = 5.0
# The shipped list (300 patents) is 3 calls: even at the vendor's worst 10 s a call a run needs minutes,
# so the hour ends only a run whose task cannot start (a missing pool). Size it for your list.
RUN_TIMEOUT = timedelta(hours=1)

with DAG(
    dag_id="patsnap_incremental_sync",
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
        with PATENT_LIST.open(encoding="utf-8", newline="") as handle:
            return [row["patent_number"].strip() for row in csv.DictReader(handle) if row["patent_number"]]

    # --8<-- [start:incremental]
    legal_events = PatsnapLegalInformationOperator(
        task_id="legal_events",
        patent_numbers=read_patent_list(),
        sql_conn_id=WAREHOUSE,
        table=TABLE,
        write_mode="sync",  # the default for SQL, spelled out
        refresh_after="7d",  # a patent is paid for at most once a week
        max_billed_units=1000,  # never more than this per run; a rerun resumes
        emit_asset=True,  # an alias to schedule on; the table's Asset is attached to it when it ran
        pool=POOL,
        qps=VENDOR_QPS / POOL_SLOTS,
    )
    # --8<-- [end:incremental]

with DAG(
    dag_id="patsnap_incremental_report",
    schedule=legal_events.outlets,  # the alias: runs whenever a sync updated the table
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,  # it calls a paid API: nothing runs until someone unpauses it
    tags=["patsnap", "example"],
    doc_md="Runs after every update of the synced legal-events table (see patsnap_incremental_sync).",
):
    # Fails when the table has no current events at all; a real report would read them here.
    SQLCheckOperator(task_id="events_present", conn_id=WAREHOUSE, sql=f"SELECT COUNT(*) FROM {TABLE}")
