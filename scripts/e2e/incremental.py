"""patsnap_incremental_sync in the deployment: its rows, the asset event it emits, and the DAG scheduled
on that asset (patsnap_incremental_report), which the scheduler must start on its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from checks import rows_exactly_once, warehouse_tables
from rest import AirflowApi

from airflow_provider_patsnap.endpoints import ENDPOINTS

SYNC, FOLLOWER = "patsnap_incremental_sync", "patsnap_incremental_report"
TABLE = "patsnap_legal_daily"  # the example DAG's table, written with write_mode="sync"
LEGAL_EVENTS = ENDPOINTS["P026"]
ASSET_TRIGGERED = "asset_triggered"


def table_uri(warehouse: Path) -> str:
    """The table's asset URI, as docs/lineage.md gives it for SQLite."""
    return f"sqlite:{warehouse}/{TABLE}"


def sync_rows(warehouse: Path, patents: list[str]) -> tuple[bool, str]:
    """Every legal event of the list exactly once in the synced table; every patent in its state table."""
    [count] = warehouse_tables(warehouse, patents, [LEGAL_EVENTS], {LEGAL_EVENTS.code: TABLE})
    with sqlite3.connect(warehouse) as db:
        [(remembered,)] = db.execute(f"SELECT COUNT(*) FROM {TABLE}_state").fetchall()
    ok = rows_exactly_once([count]) and remembered == len(patents)
    return ok, (
        f"{TABLE} {count.found}/{count.expected} (distinct {count.distinct}); {TABLE}_state remembers "
        f"{remembered} of {len(patents)} patents"
    )


def follower_run(api: AirflowApi, sync_run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The asset-triggered run of the follower that an event of ``sync_run_id`` started, with its events."""
    for run in api.dag_runs(FOLLOWER):
        if run.get("run_type") != ASSET_TRIGGERED:
            continue
        events = api.upstream_asset_events(FOLLOWER, run["dag_run_id"])
        if any(e.get("source_dag_id") == SYNC and e.get("source_run_id") == sync_run_id for e in events):
            return run, events
    return None


def describe_events(events: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{e.get('uri')} from {e.get('source_dag_id')}.{e.get('source_task_id')} run {e.get('source_run_id')}"
        for e in events
    )
