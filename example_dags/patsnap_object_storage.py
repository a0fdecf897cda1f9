"""SEIC classification and awards as newline-delimited JSON files in object storage, one file per day.

Requires the pool ``patsnap_api``; create it before the first run (``make demo`` does)::

    airflow pools set patsnap_api 2 "PatSnap API: 2 slots x 2.5 qps = vendor QPS 5"

A run that fails on its ``dagrun_timeout`` with its PatSnap tasks still ``scheduled`` usually means that
pool is missing: Airflow fails no task whose pool does not exist, and only the scheduler's log says why
("Tasks using non-existent pool 'patsnap_api' will not be scheduled"). Create the pool as above and
rerun.

``LAKE`` is an Airflow ``ObjectStoragePath``: a bucket, through the Airflow connection named before the
``@``. For S3 install the Amazon provider with s3fs (``apache-airflow-providers-amazon[s3fs]``) and
create the connection ``aws_default``; ``gs://google_cloud_default@bucket/...`` and
``abfs://wasb_default@container/...`` work the same with their providers. Each run writes
``<LAKE>/seic_classification/<ds>.jsonl`` and ``<LAKE>/award/<ds>.jsonl`` (a rerun of a day replaces its
file, through a temporary name, so a reader never sees half a file); beside each, ``<ds>.run.json``
says what the run fetched and cost, and records PatSnap sent that could not be stored go to
``<ds>.rejects.jsonl``, with the reason.

The environment variable ``PATSNAP_LAKE`` replaces the bucket without editing the file (the tests point it
at ``file://``); set ``LAKE`` to your bucket instead. A folder on the worker's own disk is not a lake on
Celery or Kubernetes: each file would stay on the worker that wrote it. Also needs ``patsnap_default``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow_provider_patsnap.id_sources import FileIds
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator, PatsnapSeicClassificationOperator

try:
    from airflow.sdk import DAG, ObjectStoragePath
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]
    from airflow.io.path import ObjectStoragePath  # type: ignore[no-redef]

PATENT_LIST = Path(__file__).parent / "data" / "patents.csv"  # shipped with the example
# Nothing is read or called here: the bucket is reached when a task writes its file.
LAKE = ObjectStoragePath(os.environ.get("PATSNAP_LAKE", "s3://aws_default@my-lake/patsnap/"))
POOL = "patsnap_api"
POOL_SLOTS = 2
VENDOR_QPS = 5.0
RUN_TIMEOUT = timedelta(
    hours=1
)  # ends a run whose tasks cannot start (a missing pool); size it for your list

with DAG(
    dag_id="patsnap_object_storage",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=True,  # it calls a paid API: nothing runs until someone unpauses it
    dagrun_timeout=RUN_TIMEOUT,
    tags=["patsnap", "example"],
    doc_md=__doc__,
):
    # --8<-- [start:object_storage]
    ids = FileIds(str(PATENT_LIST), column="patent_number")
    for operator, folder in (
        (PatsnapSeicClassificationOperator, "seic_classification"),
        (PatsnapAwardOperator, "award"),
    ):
        operator(
            task_id=folder,
            patent_numbers=ids,
            output_path=LAKE / folder / "{{ ds }}.jsonl",  # templated: one file per day
            pool=POOL,
            qps=VENDOR_QPS / POOL_SLOTS,
        )
    # --8<-- [end:object_storage]
