"""patsnap_incremental_sync under `airflow dags test`: the second run pays for nothing it already has;
patsnap_incremental_report follows the sync task's asset alias, and a DAG scheduled on the table's own
Asset URI is triggered as well."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_patsnap._compat import AIRFLOW_V_3
from airflow_provider_patsnap.sandbox import Sandbox
from scripts.airflow_env import airflow_env
from tests.helpers import EXAMPLE_DAGS, fresh_postgres_database
from tests.postgres_cluster import postgres_server_json

PATENTS = len((EXAMPLE_DAGS / "data" / "patents.csv").read_text(encoding="utf-8").splitlines()) - 1
SYNC, REPORT, CONSUMER = "patsnap_incremental_sync", "patsnap_incremental_report", "patsnap_table_consumer"
ALIAS = "patsnap:patsnap_incremental_sync.legal_events:patsnap_warehouse/patsnap_legal_daily"
TEST_DAGS = Path(__file__).parent / "dags"


def test_a_second_daily_run_is_billed_nothing_and_the_report_follows_the_asset(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    home, warehouse = tmp_path / "airflow-home", tmp_path / "warehouse.db"
    env = {
        **os.environ,
        **airflow_env(home, dags_folder=EXAMPLE_DAGS),
        "AIRFLOW_CONN_PATSNAP_DEFAULT": sandbox.connection_json(qps=20),
        "AIRFLOW_CONN_PATSNAP_WAREHOUSE": f'{{"conn_type": "sqlite", "host": "{warehouse}"}}',
    }
    airflow = str(Path(sys.executable).parent / "airflow")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        return done

    run("db", "migrate")
    billed = [sandbox.stats()["billed_units"]]
    for day in ("2024-06-01", "2024-06-02"):
        output = run("dags", "test", "patsnap_incremental_sync", day)
        billed.append(sandbox.stats()["billed_units"])
        # 2.11 knows no alias of a DAG never parsed into its metadata DB: a warning, not its FlushError.
        unknown = "is not in Airflow's metadata database" in output.stdout + output.stderr
        assert unknown is not AIRFLOW_V_3
    first, second = billed[1] - billed[0], billed[2] - billed[1]

    with sqlite3.connect(warehouse) as db:
        [(with_data,)] = db.execute("SELECT SUM(found) FROM patsnap_legal_daily_state").fetchall()
        [(remembered,)] = db.execute("SELECT COUNT(*) FROM patsnap_legal_daily_state").fetchall()
    assert first == with_data > 0 and remembered == PATENTS
    assert second == 0  # everything was fetched less than 7 days ago: nothing requested, nothing billed

    run("dags", "test", "patsnap_incremental_report", "2024-06-02")


def test_the_report_is_scheduled_on_the_alias_the_sync_declares_without_any_connection(
    monkeypatch: pytest.MonkeyPatch, metadata_db: None
) -> None:
    from airflow.models import DagBag

    for name in [name for name in os.environ if name.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(name)
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "patsnap_incremental_sync.py"))
    assert bag.import_errors == {}
    timetable = bag.dags[REPORT].timetable
    condition = getattr(timetable, "asset_condition", None) or timetable.dataset_condition
    outlets = bag.dags[SYNC].task_dict["legal_events"].outlets

    # The alias, named from the DAG file alone; the table's Asset is attached to it when the task ran.
    assert [alias.name for alias in condition.objects] == [outlet.name for outlet in outlets] == [ALIAS]


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    yield from postgres_server_json()


def test_a_dag_on_the_alias_and_a_dag_on_the_tables_uri_are_both_triggered(
    sandbox: Sandbox, postgres_server: str, tmp_path: Path
) -> None:
    """The sync writes a PostgreSQL table; its run attaches the table to the alias. Airflow then queues
    both consumers (unpaused): the example's report, scheduled on the alias, and a DAG scheduled on the
    postgres provider's URI of the table. Proven in the metadata DB's asset (dataset) DAG-run queue,
    which the scheduler turns into runs."""
    from airflow.providers.postgres.assets.postgres import create_asset

    warehouse = json.loads(fresh_postgres_database(postgres_server))
    table_uri = create_asset(
        host=warehouse["host"],
        port=warehouse["port"],
        database=warehouse["schema"],
        schema="public",
        table="patsnap_legal_daily",
    ).uri
    dags = tmp_path / "dags"  # the example file (and its patent list) beside the URI's consumer
    dags.mkdir()
    for source in (EXAMPLE_DAGS / "patsnap_incremental_sync.py", EXAMPLE_DAGS / "data"):
        (dags / source.name).symlink_to(source)
    (dags / "patsnap_table_consumer.py").symlink_to(TEST_DAGS / "patsnap_table_consumer.py")
    home = tmp_path / "airflow-home"
    env = {
        **os.environ,
        **airflow_env(home, dags_folder=dags),
        "AIRFLOW_CONN_PATSNAP_DEFAULT": sandbox.connection_json(qps=20),
        "AIRFLOW_CONN_PATSNAP_WAREHOUSE": json.dumps(warehouse),
        "PATSNAP_TABLE_URI": table_uri,
    }
    airflow = str(Path(sys.executable).parent / "airflow")

    def run(*args: str) -> str:
        done = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        return done.stdout + done.stderr

    run("db", "migrate")
    run("dags", "reserialize")  # every DAG of the folder known to the metadata DB, as a dag-processor does
    for dag_id in (REPORT, CONSUMER):
        run("dags", "unpause", dag_id)  # a paused consumer is never queued
    assert queued(home) == set()

    run("dags", "test", SYNC, "2024-06-01")

    assert queued(home) == {REPORT, CONSUMER}
    assert alias_assets(home) == [(ALIAS, table_uri)]
    [(uri, extra)] = asset_events(home)
    assert uri == table_uri and extra["endpoint"] == "P026" and extra["rows"] > 0


def metadata(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "airflow.db")


# Airflow 3 renamed its dataset tables to asset tables.
ASSET, ALIAS_TABLE, QUEUE, EVENT = (
    ("asset", "asset_alias", "asset_dag_run_queue", "asset_event")
    if AIRFLOW_V_3
    else ("dataset", "dataset_alias", "dataset_dag_run_queue", "dataset_event")
)


def queued(home: Path) -> set[str]:
    """The DAGs an asset event queued for a run (the scheduler creates it on its next loop)."""
    with metadata(home) as db:
        return {dag_id for (dag_id,) in db.execute(f"SELECT target_dag_id FROM {QUEUE}")}


def alias_assets(home: Path) -> list[tuple[str, str]]:
    """Which alias stands for which asset, as the run left it."""
    link = "asset_alias_asset" if AIRFLOW_V_3 else "dataset_alias_dataset"
    alias_id, asset_id = ("alias_id", "asset_id") if AIRFLOW_V_3 else ("alias_id", "dataset_id")
    with metadata(home) as db:
        return db.execute(
            f"SELECT a.name, t.uri FROM {link} l JOIN {ALIAS_TABLE} a ON a.id = l.{alias_id} "
            f"JOIN {ASSET} t ON t.id = l.{asset_id}"
        ).fetchall()


def asset_events(home: Path) -> list[tuple[str, dict[str, object]]]:
    asset_id = "asset_id" if AIRFLOW_V_3 else "dataset_id"
    with metadata(home) as db:
        rows = db.execute(
            f"SELECT t.uri, e.extra FROM {EVENT} e JOIN {ASSET} t ON t.id = e.{asset_id}"
        ).fetchall()
    return [(uri, json.loads(extra) if isinstance(extra, str) else extra) for uri, extra in rows]
