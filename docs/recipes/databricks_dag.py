"""PatSnap legal events into Databricks: Parquet on S3, COPY INTO a staging table, then a MERGE.

A recipe (docs/destinations.md, "Cloud warehouses"): the PatSnap task writes one Parquet file per run to
``s3://my-bucket/patsnap/legal/``; the Databricks provider's ``DatabricksCopyIntoOperator`` loads it into
the Delta table ``patsnap.legal_information_stage``, emptied first; the MERGE then makes the fetched
patents' rows in ``patsnap.legal_information`` what PatSnap returned (``sync``). Assumed to exist: the
connections ``patsnap_default``, ``aws_default`` and ``databricks_default`` (a SQL warehouse's
``http_path`` in its extra), the schema ``patsnap``, and read access of the warehouse to the bucket (a
Unity Catalog external location, say).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.databricks.operators.databricks_sql import (
    DatabricksCopyIntoOperator,
    DatabricksSqlOperator,
)

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]

# The table's columns and types (docs/destinations.md, "Tables"): TEXT and VARCHAR as STRING.
CREATE_TABLES = [
    """
    CREATE TABLE IF NOT EXISTS patsnap.legal_information (
        record_key STRING NOT NULL, pn STRING, patent_id STRING, source STRING, event_date BIGINT,
        event_code STRING, event_desc STRING, ref_country_code STRING, event_vol STRING,
        event_others STRING, event_legal_status STRING, fetched_at STRING
    ) USING DELTA
    """,
    "CREATE TABLE IF NOT EXISTS patsnap.legal_information_stage LIKE patsnap.legal_information",
    "TRUNCATE TABLE patsnap.legal_information_stage",
]

# sync: the rows of every patent in the file that PatSnap no longer returns go ...
DELETE_VANISHED = """
DELETE FROM patsnap.legal_information
WHERE pn IN (SELECT pn FROM patsnap.legal_information_stage)
  AND record_key NOT IN (SELECT record_key FROM patsnap.legal_information_stage)
"""

# ... and every row of the file is upserted on record_key.
UPSERT = """
MERGE INTO patsnap.legal_information AS t
USING patsnap.legal_information_stage AS s
ON t.record_key = s.record_key
WHEN MATCHED THEN UPDATE SET
    pn = s.pn, patent_id = s.patent_id, source = s.source, event_date = s.event_date,
    event_code = s.event_code, event_desc = s.event_desc, ref_country_code = s.ref_country_code,
    event_vol = s.event_vol, event_others = s.event_others, event_legal_status = s.event_legal_status,
    fetched_at = s.fetched_at
WHEN NOT MATCHED THEN INSERT (
    record_key, pn, patent_id, source, event_date, event_code, event_desc, ref_country_code, event_vol,
    event_others, event_legal_status, fetched_at
) VALUES (
    s.record_key, s.pn, s.patent_id, s.source, s.event_date, s.event_code, s.event_desc,
    s.ref_country_code, s.event_vol, s.event_others, s.event_legal_status, s.fetched_at
)
"""

with DAG(
    dag_id="patsnap_legal_to_databricks",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={"patents": ["CN110650438A", "US10200000B2"]},
    tags=["patsnap", "recipe"],
):
    fetch = PatsnapLegalInformationOperator(
        task_id="fetch",
        patent_numbers="{{ params.patents }}",
        output_path="s3://aws_default@my-bucket/patsnap/legal/{{ ds }}.parquet",
        max_rejects=0,  # a patent with a rejected record must not lose that record's row below
    )
    prepare = DatabricksSqlOperator(task_id="prepare", sql=CREATE_TABLES)
    load = DatabricksCopyIntoOperator(
        task_id="load",
        table_name="patsnap.legal_information_stage",
        file_location="s3://my-bucket/patsnap/legal/",
        files=["{{ ds }}.parquet"],
        file_format="PARQUET",
        force_copy=True,  # COPY INTO skips a file it loaded before: a rerun loads it again
    )
    # Delta commits each statement on its own: the deletes land first, and a failed MERGE is redone by
    # the task's retry (both statements are idempotent).
    merge = DatabricksSqlOperator(task_id="merge", sql=[DELETE_VANISHED, UPSERT])
    fetch >> prepare >> load >> merge
