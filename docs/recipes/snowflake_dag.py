"""PatSnap legal events into Snowflake: Parquet on S3, COPY INTO a staging table, then a MERGE.

A recipe (docs/destinations.md, "Cloud warehouses"): the PatSnap task writes one Parquet file per run to
the bucket behind the external stage ``@patsnap_stage``; the Snowflake provider's
``CopyFromExternalStageToSnowflakeOperator`` loads it into ``patsnap.legal_information_stage``; the
MERGE then makes the fetched patents' rows in ``patsnap.legal_information`` what PatSnap returned
(``sync``). Assumed to exist: the connections ``patsnap_default``, ``aws_default`` and
``snowflake_default`` (its database is the one holding schema ``patsnap``) and the external stage
``@patsnap_stage`` on ``s3://my-bucket/patsnap/`` (a storage integration of your account).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.snowflake.transfers.copy_into_snowflake import CopyFromExternalStageToSnowflakeOperator

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]

# The table's columns and types (docs/destinations.md, "Tables"): TEXT as VARCHAR, BIGINT as NUMBER(38,0).
CREATE_TABLES = [
    """
    CREATE TABLE IF NOT EXISTS patsnap.legal_information (
        record_key VARCHAR(40) NOT NULL PRIMARY KEY,
        pn VARCHAR, patent_id VARCHAR, source VARCHAR(16), event_date BIGINT, event_code VARCHAR,
        event_desc VARCHAR, ref_country_code VARCHAR, event_vol VARCHAR, event_others VARCHAR,
        event_legal_status VARCHAR, fetched_at VARCHAR(32)
    )
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
    dag_id="patsnap_legal_to_snowflake",
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
    prepare = SQLExecuteQueryOperator(task_id="prepare", conn_id="snowflake_default", sql=CREATE_TABLES)
    load = CopyFromExternalStageToSnowflakeOperator(
        task_id="load",
        snowflake_conn_id="snowflake_default",
        table="patsnap.legal_information_stage",
        stage="patsnap_stage",
        prefix="legal/",
        files=["{{ ds }}.parquet"],
        file_format="(TYPE = PARQUET)",
        copy_options="MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE FORCE = TRUE",  # FORCE: a rerun loads again
    )
    merge = SQLExecuteQueryOperator(
        task_id="merge",
        conn_id="snowflake_default",
        sql=[DELETE_VANISHED, UPSERT],
        autocommit=False,  # one transaction: readers never see the deletes without the upserts
    )
    fetch >> prepare >> load >> merge
