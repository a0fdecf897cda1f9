"""Two data tasks with retries=2 and the operators' default retry policy: one against a sandbox that
answers its first call "too fast, retry after 1 s", one whose connection has a wrong secret.

``PATSNAP_TEST_RETRY_DELAY`` (seconds, default 600) is the tasks' own ``retry_delay``: on Airflow 3.3 the
rate-limited task must be retried after PatSnap's ``Retry-After`` instead.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

RETRY_DELAY = timedelta(seconds=float(os.environ.get("PATSNAP_TEST_RETRY_DELAY", "600")))
PATENTS = [f"CN{170000000 + i}A" for i in range(5)]

with DAG("patsnap_rate_limited", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    PatsnapAwardOperator(task_id="awards", patent_numbers=PATENTS, retries=2, retry_delay=RETRY_DELAY)

with DAG("patsnap_auth_failure", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    PatsnapAwardOperator(
        task_id="awards",
        patent_numbers=PATENTS,
        patsnap_conn_id="patsnap_wrong_secret",
        retries=2,
        retry_delay=timedelta(seconds=0),
    )
