"""The warehouse recipes' sync SQL (docs/recipes/*_dag.py), run as written against DuckDB and PostgreSQL.

No Snowflake, BigQuery, Redshift or Databricks runs here. What runs: each recipe's DELETE_VANISHED and
UPSERT statements, read from the file (no provider needed), over a staging table loaded from the Parquet
file the operator wrote (what each warehouse's loader does), on two runs whose vendor answers differ.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator
from tests.helpers import CONN_ENV, REPO_ROOT, ScriptedVendor, fresh_postgres_database, records

RECIPES = sorted((REPO_ROOT / "docs" / "recipes").glob("*_dag.py"))
LEGAL = ENDPOINTS["P026"]
NAMES = LEGAL.column_names


def recipe_sql(path: Path) -> tuple[str, str]:
    """The recipe's DELETE_VANISHED and UPSERT, as written in the file."""
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        if node.targets[0].id in ("DELETE_VANISHED", "UPSERT")
    }
    return values["DELETE_VANISHED"], values["UPSERT"]


def legal(inpadoc: list[dict[str, Any]], official: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"inpadoc_legal_data": inpadoc, "official_legal_data": official or []}


FILED = {"event_date": 20200101, "event_code": "A", "event_desc": "filed"}
EXAMINED = {"event_date": 20210101, "event_code": "B", "event_desc": "examined"}
GRANT = {"event_date": 20220101, "event_code": "1.3", "event_desc": "grant"}
RUN_1 = {
    "CN1A": legal([FILED, EXAMINED], [{**GRANT, "event_legal_status": "active"}]),
    "CN2A": legal([FILED]),
    "CN3A": legal([{**FILED, "event_desc": "专利申请公布"}]),
}
# CN1A: the examination is gone and the grant's status changed; CN2A has no data now; CN4A is new.
RUN_2 = {
    "CN1A": legal([FILED], [{**GRANT, "event_legal_status": "lapsed"}]),
    "CN3A": RUN_1["CN3A"],
    "CN4A": legal([FILED]),
}


def patent_objects(answers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        pn: {"pn": pn, "patent_id": f"id-{pn}", "patsnap_legal_data": data} for pn, data in answers.items()
    }


def rows_of(answers: dict[str, dict[str, Any]]) -> set[tuple[Any, ...]]:
    """The rows the vendor's objects become, without fetched_at."""
    return {
        tuple(value for name, value in row.items() if name != "fetched_at")
        for patent in patent_objects(answers).values()
        for row in records(LEGAL, patent, "")
    }


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedVendor]:
    scripted = ScriptedVendor()
    monkeypatch.setenv(CONN_ENV, scripted.connection_json())
    yield scripted
    scripted.close()


def fetch(vendor: ScriptedVendor, answers: dict[str, dict[str, Any]], target: Path) -> None:
    vendor.objects = patent_objects(answers)
    PatsnapLegalInformationOperator(
        task_id="fetch",
        patent_numbers=["CN1A", "CN2A", "CN3A", "CN4A"],
        output_path=str(target),
        max_rejects=0,
    ).execute({})


class DuckDBWarehouse:
    def __init__(self) -> None:
        self.db = duckdb.connect()
        self.db.execute("CREATE SCHEMA patsnap")

    def load(self, parquet: Path) -> None:
        """What each recipe's loader does: the stage holds this file's rows only."""
        self.db.execute(
            "CREATE OR REPLACE TABLE patsnap.legal_information_stage AS SELECT * FROM read_parquet(?)",
            [str(parquet)],
        )
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS patsnap.legal_information AS "
            "SELECT * FROM patsnap.legal_information_stage LIMIT 0"
        )

    def run(self, statements: list[str]) -> None:
        self.db.execute("BEGIN")
        for statement in statements:
            self.db.execute(statement)
        self.db.execute("COMMIT")

    def target(self) -> set[tuple[Any, ...]]:
        columns = ", ".join(name for name in NAMES if name != "fetched_at")
        return set(self.db.execute(f"SELECT {columns} FROM patsnap.legal_information").fetchall())

    def close(self) -> None:
        self.db.close()


class PostgresWarehouse:
    def __init__(self, server_json: str) -> None:
        import psycopg

        settings = json.loads(fresh_postgres_database(server_json))
        self.db = psycopg.connect(
            host=settings["host"], port=settings["port"], user=settings["login"], dbname=settings["schema"]
        )
        types = {column.name: "BIGINT" if column.sql_type == "BIGINT" else "TEXT" for column in LEGAL.columns}
        columns = ", ".join(f"{name} {types[name]}" for name in NAMES)
        with self.db.transaction():
            self.db.execute("CREATE SCHEMA patsnap")
            self.db.execute(f"CREATE TABLE patsnap.legal_information ({columns}, PRIMARY KEY (record_key))")
            self.db.execute("CREATE TABLE patsnap.legal_information_stage (LIKE patsnap.legal_information)")

    def load(self, parquet: Path) -> None:
        rows = [tuple(row.values()) for row in pq.read_table(parquet).to_pylist()]
        with self.db.transaction(), self.db.cursor() as cursor:
            cursor.execute("DELETE FROM patsnap.legal_information_stage")
            marks = ", ".join(["%s"] * len(NAMES))
            cursor.executemany(f"INSERT INTO patsnap.legal_information_stage VALUES ({marks})", rows)

    def run(self, statements: list[str]) -> None:
        with self.db.transaction():
            for statement in statements:
                self.db.execute(statement)  # type: ignore[arg-type]

    def target(self) -> set[tuple[Any, ...]]:
        columns = ", ".join(name for name in NAMES if name != "fetched_at")
        return {tuple(row) for row in self.db.execute(f"SELECT {columns} FROM patsnap.legal_information")}

    def close(self) -> None:
        self.db.close()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "duckdb":
        made: Any = DuckDBWarehouse()
    else:
        made = PostgresWarehouse(request.getfixturevalue("postgres_server"))
    yield made
    made.close()


def test_every_recipe_is_run_here() -> None:
    assert [path.name for path in RECIPES] == [
        "bigquery_dag.py",
        "databricks_dag.py",
        "redshift_dag.py",
        "snowflake_dag.py",
    ]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_the_recipes_sql_keeps_the_table_in_sync_with_the_files(
    recipe: Path, warehouse: Any, vendor: ScriptedVendor, tmp_path: Path
) -> None:
    statements = list(recipe_sql(recipe))

    fetch(vendor, RUN_1, tmp_path / "day1.parquet")
    warehouse.load(tmp_path / "day1.parquet")
    warehouse.run(statements)
    assert warehouse.target() == rows_of(RUN_1)

    fetch(vendor, RUN_2, tmp_path / "day2.parquet")
    warehouse.load(tmp_path / "day2.parquet")
    warehouse.run(statements)
    # CN1A's rows are exactly what PatSnap returns now (the examination deleted, the grant's status
    # updated), CN3A's are unchanged and CN4A's are new. CN2A, which now has no data, keeps its rows:
    # no row of the file names it (the SQL destination's sync would empty it).
    after = rows_of(RUN_2) | {row for row in rows_of(RUN_1) if row[NAMES.index("pn")] == "CN2A"}
    assert warehouse.target() == after
    assert len(after) == 5

    warehouse.run(statements)  # a retry of the merge changes nothing
    assert warehouse.target() == after


def test_the_recipes_write_the_same_sync_sql_but_for_redshifts_target_alias() -> None:
    sql = {path.stem: recipe_sql(path) for path in RECIPES}
    assert len({deletes for deletes, _ in sql.values()}) == 1
    assert len({upsert for name, (_, upsert) in sql.items() if name != "redshift_dag"}) == 1
    assert "MERGE INTO patsnap.legal_information\nUSING" in sql["redshift_dag"][1]
