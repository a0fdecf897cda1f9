"""The cloud warehouse recipes of docs/destinations.md parse, as Airflow's DagBag reads them, with their
providers installed: `make recipes` runs this file in .venv-recipes (constraints-recipes.txt).

The project venvs leave those providers out: there the tests skip, unless PATSNAP_RECIPES is set (as
`make recipes` sets it), when a missing provider fails them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "recipes"
#: recipe file -> (its DAG id, the provider module it needs, its tasks' operator classes in order).
EXPECTED = {
    "snowflake_dag.py": (
        "patsnap_legal_to_snowflake",
        "airflow.providers.snowflake",
        [
            "PatsnapLegalInformationOperator",
            "SQLExecuteQueryOperator",
            "CopyFromExternalStageToSnowflakeOperator",
            "SQLExecuteQueryOperator",
        ],
    ),
    "bigquery_dag.py": (
        "patsnap_legal_to_bigquery",
        "airflow.providers.google",
        [
            "PatsnapLegalInformationOperator",
            "BigQueryInsertJobOperator",
            "GCSToBigQueryOperator",
            "BigQueryInsertJobOperator",
        ],
    ),
    "redshift_dag.py": (
        "patsnap_legal_to_redshift",
        "airflow.providers.amazon",
        [
            "PatsnapLegalInformationOperator",
            "SQLExecuteQueryOperator",
            "S3ToRedshiftOperator",
            "SQLExecuteQueryOperator",
        ],
    ),
    "databricks_dag.py": (
        "patsnap_legal_to_databricks",
        "airflow.providers.databricks",
        [
            "PatsnapLegalInformationOperator",
            "DatabricksSqlOperator",
            "DatabricksCopyIntoOperator",
            "DatabricksSqlOperator",
        ],
    ),
}


def test_every_recipe_file_is_checked() -> None:
    assert sorted(path.name for path in RECIPES.glob("*_dag.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_recipe_parses_with_its_provider(name: str) -> None:
    dag_id, provider, operators = EXPECTED[name]
    if importlib.util.find_spec(provider) is None:
        if os.environ.get("PATSNAP_RECIPES"):
            pytest.fail(f"{provider} is not installed: make recipes installs it (.venv-recipes)")
        pytest.skip(f"{provider} is not installed here: make recipes runs this test with it")
    from airflow.models import DagBag

    from airflow_provider_patsnap._compat import AIRFLOW_V_3

    kwargs: dict[str, Any] = {} if AIRFLOW_V_3 else {"include_examples": False}
    bag = DagBag(dag_folder=str(RECIPES / name), **kwargs)
    assert bag.import_errors == {}
    assert list(bag.dags) == [dag_id]
    dag = bag.dags[dag_id]
    tasks = [dag.get_task(task_id) for task_id in ("fetch", "prepare", "load", "merge")]
    assert [type(task).__name__ for task in tasks] == operators
    # One chain: fetch >> prepare >> load >> merge.
    assert [sorted(task.downstream_task_ids) for task in tasks] == [["prepare"], ["load"], ["merge"], []]
    fetch = tasks[0]
    assert fetch.output_path.endswith("/patsnap/legal/{{ ds }}.parquet") and fetch.max_rejects == 0
