"""One run record per task try, beside the rows: in patsnap_runs for a table, <name>.run.json for a file;
a failed try is recorded too, and the cost-per-DAG query of docs/observability.md runs as written."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.exceptions import PatsnapBudgetError, PatsnapQuotaError
from airflow_provider_patsnap.operators import _batch
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sinks.runs import RUN_NAMES
from tests.helpers import REPO_ROOT, FakeTaskInstance, OperatorClock, fresh_postgres_database, numbers

COST_QUERY = re.search(r"```sql\n(.*?)```", (REPO_ROOT / "docs" / "observability.md").read_text(), re.S)[1]  # type: ignore[index]
SUMMARY_FIELDS = {
    "requested": "requested",
    "skipped_fresh": "skipped_fresh",
    "found": "found",
    "rows_written": "rows",
    "rows_removed": "rows_removed",
    "rejects": "rejects",
    "billed_units": "billed_units",
    "billed_units_unknown": "billed_units_unknown",
    "calls": "calls",
    "retries": "retries",
}


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "sqlite":
        conn = f'{{"conn_type": "sqlite", "host": "{tmp_path / "runs.db"}"}}'
    else:
        conn = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    monkeypatch.setenv("AIRFLOW_CONN_RUNS", conn)
    return "runs"


def records(conn_id: str = "runs") -> list[dict[str, Any]]:
    rows = (
        BaseHook.get_connection(conn_id)
        .get_hook()
        .get_records(f"SELECT {', '.join(RUN_NAMES)} FROM patsnap_runs")
    )
    return sorted(
        (dict(zip(RUN_NAMES, row, strict=True)) for row in rows), key=lambda r: (r["run_id"], r["try_number"])
    )


class TryOf(FakeTaskInstance):
    def __init__(self, try_number: int) -> None:
        super().__init__()
        self.try_number = try_number


def context(run_id: str, try_number: int = 1) -> dict[str, Any]:
    return {"ti": TryOf(try_number), "run_id": run_id}


def test_each_try_leaves_one_record_equal_to_its_summary(patsnap: Sandbox, warehouse: str) -> None:
    summary = PatsnapAwardOperator(
        task_id="awards", patent_numbers=numbers(250), sql_conn_id=warehouse
    ).execute(context("run-1"))
    [record] = records()
    assert (record["dag_id"], record["run_id"], record["task_id"], record["try_number"]) == (
        "adhoc_airflow",
        "run-1",
        "awards",
        1,
    )
    assert (record["outcome"], record["error_class"], record["write_mode"]) == ("success", None, "sync")
    assert record["ended_at"] >= record["started_at"]
    assert {name: record[name] for name in SUMMARY_FIELDS} == {
        name: summary[key] for name, key in SUMMARY_FIELDS.items()
    }
    assert record["destination"] == summary["destination"]


def test_a_budget_stop_and_a_fatal_vendor_error_are_recorded_as_failed_tries(
    patsnap_sandbox_factory: Any, warehouse: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = patsnap_sandbox_factory()
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", sandbox.connection_json(qps=0, concurrency=1))
    with pytest.raises(PatsnapBudgetError) as stopped:
        PatsnapAwardOperator(
            task_id="awards", patent_numbers=numbers(250), sql_conn_id=warehouse, max_billed_units=120
        ).execute(context("run-1", try_number=1))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        patsnap_sandbox_factory(fault_rate=1.0, faults=("quota",)).connection_json(qps=0),
    )
    with pytest.raises(PatsnapQuotaError):
        PatsnapAwardOperator(task_id="awards", patent_numbers=numbers(250), sql_conn_id=warehouse).execute(
            context("run-1", try_number=2)
        )
    budget, quota = records()
    assert (budget["try_number"], budget["outcome"], budget["error_class"]) == (
        1,
        "failed",
        "PatsnapBudgetError",
    )
    partial = stopped.value.summary or {}
    assert {name: budget[name] for name in SUMMARY_FIELDS} == {
        name: partial[key] for name, key in SUMMARY_FIELDS.items()
    }
    assert (quota["try_number"], quota["outcome"], quota["error_class"]) == (2, "failed", "PatsnapQuotaError")
    assert (quota["rows_written"], quota["billed_units"]) == (0, 0)


def test_the_cost_per_dag_per_month_query_of_the_docs_runs(
    patsnap: Sandbox, warehouse: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = OperatorClock(datetime(2026, 10, 30, tzinfo=UTC))
    monkeypatch.setattr(_batch, "utc_now", clock)
    billed: dict[tuple[str, str], int] = {}
    for dag_id, days, ids in (
        ("daily", 0, numbers(120)),
        ("weekly", 1, numbers(80, start=2)),
        ("daily", 5, numbers(50, start=3)),
    ):
        clock.now = datetime(2026, 10, 30, tzinfo=UTC) + timedelta(days=days)
        operator = PatsnapAwardOperator(task_id="awards", patent_numbers=ids, sql_conn_id=warehouse)
        monkeypatch.setattr(type(operator), "dag_id", property(lambda self, name=dag_id: name))
        summary = operator.execute(context(f"{dag_id}-{days}"))
        month = clock.now.strftime("%Y-%m")
        billed[(dag_id, month)] = billed.get((dag_id, month), 0) + summary["billed_units"]
    rows = BaseHook.get_connection(warehouse).get_hook().get_records(COST_QUERY)
    assert [(dag_id, month, int(units)) for dag_id, month, units, *_ in rows] == [
        (dag_id, month, units)
        for (dag_id, month), units in sorted(billed.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def test_a_file_destination_writes_the_record_beside_its_file(patsnap: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "awards.jsonl"
    summary = PatsnapAwardOperator(
        task_id="awards", patent_numbers=numbers(150), output_path=str(target)
    ).execute(context("run-7"))
    record = json.loads((tmp_path / "awards.run.json").read_text(encoding="utf-8"))
    assert (record["run_id"], record["outcome"], record["write_mode"]) == ("run-7", "success", None)
    assert {name: record[name] for name in SUMMARY_FIELDS} == {
        name: summary[key] for name, key in SUMMARY_FIELDS.items()
    }
