"""PatSnap legal events into BigQuery: Parquet on GCS, a load job into a staging table, then a MERGE.

A recipe (docs/destinations.md, "Cloud warehouses"): the PatSnap task writes one Parquet file per run to
``gs://my-bucket/patsnap/legal/``; the Google provider's ``GCSToBigQueryOperator`` loads it into
``patsnap.legal_information_stage`` (replaced by every load, its schema the file's); one script then
makes the fetched patents' rows in ``patsnap.legal_information`` what PatSnap returned (``sync``), in a
transaction. Assumed to exist: the connections ``patsnap_default`` and ``google_cloud_default`` and the
dataset ``patsnap`` in the connection's project.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator
from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]

# The table's columns and types (docs/destinations.md, "Tables"): TEXT and VARCHAR as STRING, BIGINT INT64.
CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS patsnap.legal_information (
    record_key STRING NOT NULL, pn STRING, patent_id STRING, source STRING, event_date INT64,
    event_code STRING, event_desc STRING, ref_country_code STRING, event_vol STRING,
    event_others STRING, event_legal_status STRING, fetched_at STRING,
    PRIMARY KEY (record_key) NOT ENFORCED
)
"""

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


def query(sql: str) -> dict:
    return {"query": {"query": sql, "useLegacySql": False}}


with DAG(
    dag_id="patsnap_legal_to_bigquery",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={"patents": ["CN110650438A", "US10200000B2"]},
    tags=["patsnap", "recipe"],
):
    fetch = PatsnapLegalInformationOperator(
        task_id="fetch",
        patent_numbers="{{ params.patents }}",
        output_path="gs://google_cloud_default@my-bucket/patsnap/legal/{{ ds }}.parquet",
        max_rejects=0,  # a patent with a rejected record must not lose that record's row below
    )
    prepare = BigQueryInsertJobOperator(task_id="prepare", configuration=query(CREATE_TABLE))
    load = GCSToBigQueryOperator(
        task_id="load",
        bucket="my-bucket",
        source_objects=["patsnap/legal/{{ ds }}.parquet"],
        destination_project_dataset_table="patsnap.legal_information_stage",
        source_format="PARQUET",
        write_disposition="WRITE_TRUNCATE",  # the stage holds this run's file only
        create_disposition="CREATE_IF_NEEDED",
    )
    merge = BigQueryInsertJobOperator(
        task_id="merge",
        configuration=query(f"BEGIN TRANSACTION;\n{DELETE_VANISHED};\n{UPSERT};\nCOMMIT TRANSACTION;"),
    )
    fetch >> prepare >> load >> merge
