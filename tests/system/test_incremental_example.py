"""patsnap_incremental_sync under `airflow dags test`: the second run pays for nothing it already has,
and patsnap_incremental_report is scheduled on the table's Asset."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_patsnap.sandbox import Sandbox
from scripts.airflow_env import airflow_env
from tests.helpers import EXAMPLE_DAGS

PATENTS = len((EXAMPLE_DAGS / "data" / "patents.csv").read_text(encoding="utf-8").splitlines()) - 1


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
        run("dags", "test", "patsnap_incremental_sync", day)
        billed.append(sandbox.stats()["billed_units"])
    first, second = billed[1] - billed[0], billed[2] - billed[1]

    with sqlite3.connect(warehouse) as db:
        [(with_data,)] = db.execute("SELECT SUM(found) FROM patsnap_legal_daily_state").fetchall()
        [(remembered,)] = db.execute("SELECT COUNT(*) FROM patsnap_legal_daily_state").fetchall()
    assert first == with_data > 0 and remembered == PATENTS
    assert second == 0  # everything was fetched less than 7 days ago: nothing requested, nothing billed

    run("dags", "test", "patsnap_incremental_report", "2024-06-02")


def test_the_report_is_scheduled_on_the_asset_the_sync_emits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow.models import DagBag

    warehouse = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_WAREHOUSE", f'{{"conn_type": "sqlite", "host": "{warehouse}"}}')
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "patsnap_incremental_sync.py"))
    timetable = bag.dags["patsnap_incremental_report"].timetable
    condition = getattr(timetable, "asset_condition", None) or timetable.dataset_condition
    outlets = bag.dags["patsnap_incremental_sync"].task_dict["legal_events"].outlets

    # The table as its database names it, the same URI lineage reports (docs/lineage.md).
    assert [asset.uri for asset in condition.objects] == [outlet.uri for outlet in outlets]
    assert [outlet.uri for outlet in outlets] == [f"sqlite:{warehouse}/patsnap_legal_daily"]
