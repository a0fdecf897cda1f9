"""Legal events kept as history in a PostgreSQL warehouse: every version of every event, with its validity.

Requires the pool ``patsnap_api``; create it before the first run (``make demo`` does)::

    airflow pools set patsnap_api 2 "PatSnap API: 2 slots x 2.5 qps = vendor QPS 5"

A run that fails on its ``dagrun_timeout`` with ``legal_history`` still ``scheduled`` usually means that
pool is missing: Airflow fails no task whose pool does not exist, and only the scheduler's log says why
("Tasks using non-existent pool 'patsnap_api' will not be scheduled"). Create the pool as above and
rerun.

The warehouse is the Airflow connection ``patsnap_postgres`` (the PostgreSQL provider,
``apache-airflow-providers-postgres``, must be installed where tasks run; its ``schema`` field is the
database)::

    export AIRFLOW_CONN_PATSNAP_POSTGRES='{"conn_type": "postgres", "host": "warehouse.internal",
        "port": 5432, "login": "patsnap_loader", "password": "...", "schema": "analytics"}'

or ``airflow connections add patsnap_postgres --conn-type postgres --conn-host warehouse.internal
--conn-port 5432 --conn-login patsnap_loader --conn-password ... --conn-schema analytics``. The login
needs ``CREATE`` on the schema the first time (the table ``patsnap_legal_history`` and its
``_state`` and ``_rejects`` tables are created), then ``SELECT``, ``INSERT``, ``UPDATE`` and ``DELETE``.

``write_mode="history"`` keeps what PatSnap said at each run: a new or changed event opens a version
(``valid_from``), a changed or vanished one closes its version (``valid_to``), unchanged data is not
written. Ask "what did we know on date X?" with ``WHERE valid_from <= X AND (valid_to IS NULL OR
valid_to > X)`` (docs/destinations.md, "Write modes"). Also needs ``patsnap_default``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.common.sql.operators.sql import SQLCheckOperator

from airflow_provider_patsnap.id_sources import FileIds
from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]

PATENT_LIST = Path(__file__).parent / "data" / "patents.csv"  # shipped with the example
WAREHOUSE = "patsnap_postgres"
TABLE = "patsnap_legal_history"
POOL = "patsnap_api"
POOL_SLOTS = 2
VENDOR_QPS = 5.0
RUN_TIMEOUT = timedelta(hours=1)  # ends a run whose task cannot start (a missing pool); size it for your list

with DAG(
    dag_id="patsnap_postgres_warehouse",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,  # it calls a paid API: nothing runs until someone unpauses it
    dagrun_timeout=RUN_TIMEOUT,
    tags=["patsnap", "example"],
    doc_md=__doc__,
):
    # --8<-- [start:postgres]
    legal_history = PatsnapLegalInformationOperator(
        task_id="legal_history",
        patent_numbers=FileIds(str(PATENT_LIST), column="patent_number"),  # read when the task runs
        sql_conn_id=WAREHOUSE,
        table=TABLE,
        write_mode="history",
        refresh_after="1d",  # at most one paid look a day per patent, whatever reruns happen
        pool=POOL,
        qps=VENDOR_QPS / POOL_SLOTS,
    )
    # Fails when no event is current: a load that landed nothing is not a success.
    current_events = SQLCheckOperator(
        task_id="current_events",
        conn_id=WAREHOUSE,
        sql=f"SELECT COUNT(*) FROM {TABLE} WHERE valid_to IS NULL",
    )
    legal_history >> current_events
    # --8<-- [end:postgres]
