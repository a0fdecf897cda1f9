"""PatSnap legal events into Redshift: Parquet on S3, COPY into a staging table, then a MERGE.

A recipe (docs/destinations.md, "Cloud warehouses"): the PatSnap task writes one Parquet file per run to
``s3://my-bucket/patsnap/legal/``; the Amazon provider's ``S3ToRedshiftOperator`` replaces the rows of
``patsnap.legal_information_stage`` with it (``COPY ... FORMAT AS PARQUET``, which maps the file's
columns by position: the stage's columns are in the file's order); the MERGE then makes the fetched
patents' rows in ``patsnap.legal_information`` what PatSnap returned (``sync``). Assumed to exist: the
connections ``patsnap_default``, ``aws_default`` (which Redshift's COPY uses to read the bucket) and
``redshift_default``, and the schema ``patsnap``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.amazon.aws.transfers.s3_to_redshift import S3ToRedshiftOperator
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]

# The table's columns and types (docs/destinations.md, "Tables"). Redshift's TEXT is VARCHAR(256): the
# provider's TEXT columns are VARCHAR(65535) here, the longest Redshift has.
CREATE_TABLES = [
    """
    CREATE TABLE IF NOT EXISTS patsnap.legal_information (
        record_key VARCHAR(40) NOT NULL, pn VARCHAR(65535), patent_id VARCHAR(65535),
        source VARCHAR(16), event_date BIGINT, event_code VARCHAR(65535), event_desc VARCHAR(65535),
        ref_country_code VARCHAR(65535), event_vol VARCHAR(65535), event_others VARCHAR(65535),
        event_legal_status VARCHAR(65535), fetched_at VARCHAR(32),
        PRIMARY KEY (record_key)
    )
    """,
    "CREATE TABLE IF NOT EXISTS patsnap.legal_information_stage (LIKE patsnap.legal_information)",
]

# sync: the rows of every patent in the file that PatSnap no longer returns go ...
DELETE_VANISHED = """
DELETE FROM patsnap.legal_information
WHERE pn IN (SELECT pn FROM patsnap.legal_information_stage)
  AND record_key NOT IN (SELECT record_key FROM patsnap.legal_information_stage)
"""

# ... and every row of the file is upserted on record_key. Redshift's MERGE takes no alias for its target.
UPSERT = """
MERGE INTO patsnap.legal_information
USING patsnap.legal_information_stage AS s
ON patsnap.legal_information.record_key = s.record_key
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
    dag_id="patsnap_legal_to_redshift",
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
    prepare = SQLExecuteQueryOperator(task_id="prepare", conn_id="redshift_default", sql=CREATE_TABLES)
    load = S3ToRedshiftOperator(
        task_id="load",
        redshift_conn_id="redshift_default",
        aws_conn_id="aws_default",
        schema="patsnap",
        table="legal_information_stage",
        s3_bucket="my-bucket",
        s3_key="patsnap/legal/{{ ds }}.parquet",
        copy_options=["FORMAT AS PARQUET"],
        method="REPLACE",  # the stage's rows deleted and the file copied in, in one transaction
    )
    merge = SQLExecuteQueryOperator(
        task_id="merge",
        conn_id="redshift_default",
        sql=[DELETE_VANISHED, UPSERT],
        autocommit=False,  # one transaction: readers never see the deletes without the upserts
    )
    fetch >> prepare >> load >> merge
