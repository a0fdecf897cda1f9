"""The example DAGs import cleanly and run under `airflow dags test`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_patsnap._compat import AIRFLOW_V_3
from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.sandbox import Sandbox
from scripts.airflow_env import airflow_env
from tests.helpers import EXAMPLE_DAGS

POOL = "patsnap_api"


def example_dag_bag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Every shipped example DAG, parsed by Airflow's own DagBag."""
    from airflow.models import DagBag

    # patsnap_incremental_sync names its Asset from the warehouse connection when parsed.
    warehouse = f'{{"conn_type": "sqlite", "host": "{tmp_path / "warehouse.db"}"}}'
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_WAREHOUSE", warehouse)
    kwargs: dict[str, Any] = {} if AIRFLOW_V_3 else {"include_examples": False}
    return DagBag(dag_folder=str(EXAMPLE_DAGS), **kwargs)


def test_every_example_dag_imports_without_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bag = example_dag_bag(monkeypatch, tmp_path)
    assert bag.import_errors == {}
    assert {
        "patsnap_enrichment",
        "patsnap_sharded_enrichment",
        "patsnap_incremental_sync",
        "patsnap_incremental_report",
    } <= set(bag.dag_ids)
    assert "pool slots × per-task qps" in (bag.dags["patsnap_sharded_enrichment"].doc_md or "")


def test_every_dag_in_the_pool_has_a_run_timeout_and_its_docstring_says_what_one_means(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A task whose pool is missing stays ``scheduled`` for ever and Airflow fails nothing: only the
    ``dagrun_timeout`` ends such a run, and the DAG's docs, first thing, say how to create the pool."""
    bag = example_dag_bag(monkeypatch, tmp_path)
    pooled = {dag_id for dag_id, dag in bag.dags.items() if any(task.pool == POOL for task in dag.tasks)}
    assert pooled == {"patsnap_enrichment", "patsnap_sharded_enrichment", "patsnap_incremental_sync"}
    for dag_id in sorted(pooled):
        dag = bag.dags[dag_id]
        assert dag.dagrun_timeout is not None and dag.dagrun_timeout >= timedelta(minutes=30), dag_id
        # The summary line, "Requires the pool", its command and the paragraph after it.
        top = "\n\n".join((dag.doc_md or "").split("\n\n")[:4])
        assert f"airflow pools set {POOL} 2" in top, dag_id
        assert "dagrun_timeout" in top and "scheduled" in top, dag_id


def test_without_the_warehouse_connection_the_import_error_says_where_it_must_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a dag-processor without ``patsnap_warehouse`` logs for patsnap_incremental_sync (its Asset URI
    is built from that connection at parse time): an import error naming it, not a bare lookup failure."""
    from airflow.models import DagBag

    monkeypatch.delenv("AIRFLOW_CONN_PATSNAP_WAREHOUSE", raising=False)
    kwargs: dict[str, Any] = {} if AIRFLOW_V_3 else {"include_examples": False}
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "patsnap_incremental_sync.py"), **kwargs)

    [(path, error)] = bag.import_errors.items()
    assert path.endswith("patsnap_incremental_sync.py")
    assert "emit_asset=True: connection 'patsnap_warehouse' must exist where DAG files are parsed" in error
    assert "AIRFLOW_CONN_PATSNAP_WAREHOUSE" in error


def test_the_shipped_patent_list_is_valid() -> None:
    from airflow_provider_patsnap.ids import normalise_ids

    lines = (EXAMPLE_DAGS / "data" / "patents.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "patent_number"
    numbers = normalise_ids(lines[1:])
    assert len(numbers) == len(lines) - 1 >= 200
    assert any(number.startswith("NODATA") for number in numbers)


@pytest.mark.parametrize(
    ("dag_id", "tables"),
    [
        ("patsnap_enrichment", [endpoint.default_table for endpoint in ENDPOINTS.values()]),
        ("patsnap_sharded_enrichment", ["patsnap_legal_information"]),
        ("patsnap_incremental_sync", ["patsnap_legal_daily"]),
    ],
)
def test_airflow_dags_test_succeeds(sandbox: Sandbox, tmp_path: Path, dag_id: str, tables: list[str]) -> None:
    home, warehouse = tmp_path / "airflow-home", tmp_path / "warehouse.db"
    env = {
        **os.environ,
        **airflow_env(home, dags_folder=EXAMPLE_DAGS),
        "AIRFLOW_CONN_PATSNAP_DEFAULT": sandbox.connection_json(qps=20),
        "AIRFLOW_CONN_PATSNAP_WAREHOUSE": f'{{"conn_type": "sqlite", "host": "{warehouse}"}}',
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=180)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    sandbox.clear_requests()

    run = subprocess.run(
        [airflow, "dags", "test", dag_id, "2024-06-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    with sqlite3.connect(warehouse) as db:
        for table in tables:
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] > 0
    data_calls = [record for record in sandbox.requests if record.ids and record.path != "/oauth/token"]
    shipped = (EXAMPLE_DAGS / "data" / "patents.csv").read_text(encoding="utf-8").split()[1:]
    for path in {record.path for record in data_calls}:
        asked = [value for record in data_calls if record.path == path for value in record.ids]
        assert sorted(asked) == sorted(shipped), path  # every patent of the list asked for once
    # 300 patents are three batches; a hash shard holds about 100, so three shards take three or four.
    assert len(tables) * 3 <= len(data_calls) <= len(tables) * 4
    if dag_id == "patsnap_sharded_enrichment":  # map_index_template="{{ patsnap_ids }}"
        with sqlite3.connect(home / "airflow.db") as meta:
            labels = [
                row[0]
                for row in meta.execute("SELECT rendered_map_index FROM task_instance ORDER BY map_index")
            ]
        sizes = [int(label.split(": ")[1].split()[0]) for label in labels]
        assert [label.split(":")[0] for label in labels] == ["shard 1/3", "shard 2/3", "shard 3/3"], labels
        assert sum(sizes) == len(shipped)
