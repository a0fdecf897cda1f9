"""The example DAGs import cleanly and run under `airflow dags test`."""

from __future__ import annotations

import json
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


@pytest.fixture
def example_dag_bag(monkeypatch: pytest.MonkeyPatch, metadata_db: None) -> Any:
    """Every shipped example DAG, parsed by Airflow's own DagBag with no connection defined."""
    from airflow.models import DagBag

    for name in [name for name in os.environ if name.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(name)
    kwargs: dict[str, Any] = {} if AIRFLOW_V_3 else {"include_examples": False}
    return DagBag(dag_folder=str(EXAMPLE_DAGS), **kwargs)


def test_every_example_dag_imports_without_errors_or_connections(example_dag_bag: Any) -> None:
    bag = example_dag_bag
    assert bag.import_errors == {}
    assert {
        "patsnap_enrichment",
        "patsnap_sharded_enrichment",
        "patsnap_incremental_sync",
        "patsnap_incremental_report",
    } <= set(bag.dag_ids)
    assert "pool slots × per-task qps" in (bag.dags["patsnap_sharded_enrichment"].doc_md or "")


def test_every_example_is_paused_when_created_and_the_report_asks_where_its_file_goes(
    example_dag_bag: Any,
) -> None:
    """Shipped examples call a paid API: in a deployment that lists them (Airflow 3.3's load_examples)
    nothing runs until someone unpauses one. The report has no default target: a run without
    ``report_dir`` is refused when triggered, before anything is paid."""
    bag = example_dag_bag
    assert bag.import_errors == {}
    assert {dag_id for dag_id, dag in bag.dags.items() if dag.is_paused_upon_creation is not True} == set()
    params = bag.dags["patsnap_value_report"].params
    with pytest.raises(Exception, match="report_dir"):
        params.validate()
    params["report_dir"] = "s3://aws_default@bucket/reports/"
    assert params.validate()["report_dir"] == "s3://aws_default@bucket/reports/"


def test_every_dag_in_the_pool_has_a_run_timeout_and_its_docstring_says_what_one_means(
    example_dag_bag: Any,
) -> None:
    """A task whose pool is missing stays ``scheduled`` for ever and Airflow fails nothing: only the
    ``dagrun_timeout`` ends such a run, and the DAG's docs, first thing, say how to create the pool."""
    bag = example_dag_bag
    pooled = {dag_id for dag_id, dag in bag.dags.items() if any(task.pool == POOL for task in dag.tasks)}
    assert pooled == {
        "patsnap_enrichment",
        "patsnap_sharded_enrichment",
        "patsnap_incremental_sync",
        "patsnap_warehouse_ids",
        "patsnap_postgres_warehouse",
        "patsnap_object_storage",
        "patsnap_spend_gate",
    }
    for dag_id in sorted(pooled):
        dag = bag.dags[dag_id]
        assert dag.dagrun_timeout is not None and dag.dagrun_timeout >= timedelta(minutes=30), dag_id
        # The summary line, "Requires the pool", its command and the paragraph after it.
        top = "\n\n".join((dag.doc_md or "").split("\n\n")[:4])
        assert f"airflow pools set {POOL} 2" in top, dag_id
        assert "dagrun_timeout" in top and "scheduled" in top, dag_id


# What Airflow 3.3's dag-processor does with [core] load_examples on: the provider's example_dags folder
# is a bundle of its own, parsed one file per subprocess with BundleDagBag and then serialized
# (airflow/dag_processing/processor.py), in a deployment that defines none of their connections.
BUNDLE_PROBE = """
import json, os
import structlog
from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.dag_processing.processor import _serialize_dags

manager = DagBundlesManager()
names = sorted(bundle.name for bundle in manager.get_all_dag_bundles())
bundle = manager.get_bundle("airflow-provider-patsnap-example-dags")
bundle.initialize()
dags, errors = {}, {}
for name in sorted(os.listdir(bundle.path)):
    if name.endswith(".py"):
        path = os.path.join(str(bundle.path), name)
        bag = BundleDagBag(dag_folder=path, bundle_path=bundle.path, bundle_name=bundle.name, load_op_links=False)
        errors.update(bag.import_errors)
        errors.update(_serialize_dags(bag, structlog.get_logger())[1])
        dags.update({dag_id: name for dag_id in bag.dag_ids})
print("BUNDLE " + json.dumps({"bundles": names, "path": str(bundle.path), "dags": dags, "errors": errors}))
"""


@pytest.mark.skipif(not AIRFLOW_V_3, reason="Airflow 2.11 never loads a provider's example DAGs")
def test_airflow_loads_the_example_bundle_with_no_connection_and_no_import_error(tmp_path: Path) -> None:
    """``load_examples`` (on by default) makes Airflow 3.3 parse every provider's ``example_dags`` in every
    deployment, where none of their connections exists: any parse-time connection read is an import
    error there. The editable install of this checkout is found like an installed wheel."""
    from airflow_provider_patsnap._compat import AIRFLOW_VERSION

    if tuple(int(part) for part in AIRFLOW_VERSION.split(".")[:2]) < (3, 3):
        pytest.skip("provider example bundles arrived in Airflow 3.3")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    env.update(airflow_env(tmp_path / "airflow-home", dags_folder=tmp_path / "dags", load_examples=True))
    (tmp_path / "dags").mkdir()
    migrate = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]

    probe = subprocess.run(
        [sys.executable, "-c", BUNDLE_PROBE], env=env, capture_output=True, text=True, timeout=240
    )

    assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr[-3000:]
    [line] = [line for line in probe.stdout.splitlines() if line.startswith("BUNDLE ")]
    found = json.loads(line.removeprefix("BUNDLE "))
    assert "airflow-provider-patsnap-example-dags" in found["bundles"]
    assert Path(found["path"]).resolve() == EXAMPLE_DAGS.resolve()
    assert found["errors"] == {}
    assert set(found["dags"]) == {
        "patsnap_enrichment",
        "patsnap_sharded_enrichment",
        "patsnap_incremental_sync",
        "patsnap_incremental_report",
        "patsnap_value_report",
        "patsnap_warehouse_ids",
        "patsnap_postgres_warehouse",
        "patsnap_object_storage",
        "patsnap_spend_gate",
    }


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
