"""Lineage and assets: one name per destination, the one the SQL providers and common.io give it.

The facet tests run where the OpenLineage provider is installed (the dev extra installs it): they go
through the provider's own ExtractorManager, as its listener does when a task succeeds.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.lineage import destination_dataset, file_dataset, named_by_its_hook
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sandbox import Sandbox
from tests.helpers import OutletEvents, fresh_postgres_database, numbers
from tests.mariadb_server import fresh_mariadb_database

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG  # type: ignore[assignment]

IDS = numbers(12, start=170000000)
AWARD_PATH = "/advanced-patent-data/award-data"
LINEAGE_DOC = Path(__file__).resolve().parents[3] / "docs" / "lineage.md"
# A JSON block of docs/lineage.md that shows what a test here captured: <!-- captured: name --> above it.
CAPTURED_BLOCK = re.compile(r"<!-- captured: (\w+) -->\n+```json\n(.*?)```", re.DOTALL)
DOC_BASE_URL = "http://127.0.0.1:33709"  # the docs' sandbox address, for the test's own


def pg_settings(postgres_conn: str) -> Any:
    return BaseHook.get_connection(postgres_conn)


def asset_uri(op: PatsnapAwardOperator) -> str:
    """The URI of the asset ``op`` attaches to its alias when it runs (its connection is read now)."""
    asset = op.destination_asset()
    assert asset is not None
    return str(asset.uri)


def output_rows(output: dict[str, Any]) -> int:
    return int(output["outputFacets"]["outputStatistics"]["rowCount"])


def test_a_postgres_table_asset_is_the_postgres_providers_own_uri(postgres_conn: str) -> None:
    from airflow.providers.postgres.assets.postgres import create_asset

    connection = pg_settings(postgres_conn)
    op = PatsnapAwardOperator(task_id="a", patent_numbers=IDS, sql_conn_id=postgres_conn, emit_asset=True)
    schema_op = PatsnapAwardOperator(
        task_id="b", patent_numbers=IDS, sql_conn_id=postgres_conn, table="enrich.awards", emit_asset=True
    )

    expected = create_asset(
        host=connection.host,
        port=connection.port,
        database=connection.schema,
        schema="public",
        table="patsnap_award",
    )
    assert asset_uri(op) == expected.uri
    assert asset_uri(schema_op) == f"postgres://127.0.0.1:{connection.port}/{connection.schema}/enrich/awards"


def test_sqlite_and_file_assets_name_the_database_file_and_the_path(sqlite_conn: str, tmp_path: Any) -> None:
    table_op = PatsnapAwardOperator(task_id="a", patent_numbers=IDS, sql_conn_id=sqlite_conn, emit_asset=True)
    file_op = PatsnapAwardOperator(
        task_id="b", patent_numbers=IDS, output_path=f"{tmp_path}/a.jsonl", emit_asset=True
    )
    s3_op = PatsnapAwardOperator(
        task_id="c", patent_numbers=IDS, output_path="s3://aws_prod@bucket/patsnap/a.jsonl", emit_asset=True
    )

    # Airflow drops the empty authority of sqlite:///path when it stores an asset URI.
    assert asset_uri(table_op) == f"sqlite:{tmp_path}/warehouse.db/patsnap_award"
    assert asset_uri(file_op) == f"file://{tmp_path}/a.jsonl"
    assert asset_uri(s3_op) == "s3://bucket/patsnap/a.jsonl"  # no connection id


def test_assets_that_would_name_nothing_stable_are_refused() -> None:
    with pytest.raises(ValueError, match="relative"):
        PatsnapAwardOperator(task_id="a", patent_numbers=IDS, output_path="data/a.jsonl", emit_asset=True)
    with pytest.raises(ValueError, match="literal"):
        PatsnapAwardOperator(
            task_id="c", patent_numbers=IDS, sql_conn_id="x", table="{{ params.t }}", emit_asset=True
        )


def test_declaring_the_outlet_reads_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The alias is named from the DAG file alone: a connection that exists nowhere is no error, and
    nothing asks Airflow (or a secrets backend) for one while the file is parsed."""
    asked: list[str] = []

    def get_connection(conn_id: str) -> Any:
        asked.append(conn_id)
        raise AssertionError("a connection was read while the DAG was built")

    monkeypatch.setattr(BaseHook, "get_connection", get_connection)
    with DAG("warehouse_sync", schedule=None, start_date=datetime(2024, 1, 1)):
        op = PatsnapAwardOperator(
            task_id="awards", patent_numbers=IDS, sql_conn_id="warehouse_nowhere", emit_asset=True
        )

    assert asked == []
    assert op.asset_alias is not None and op.outlets == [op.asset_alias]
    assert op.asset_alias.name == "patsnap:warehouse_sync.awards:warehouse_nowhere/patsnap_award"


def test_a_file_asset_converts_to_the_same_openlineage_dataset_as_common_io_gives() -> None:
    pytest.importorskip("airflow.providers.openlineage")
    from airflow.providers.common.io.assets.file import convert_asset_to_openlineage, create_asset

    for path in ("/data/awards.jsonl", "file:///data/awards.jsonl"):
        ours = file_dataset(path)
        theirs = convert_asset_to_openlineage(create_asset(path=path), None)
        assert (ours.namespace, ours.name, ours.uri) == (
            theirs.namespace,
            theirs.name,
            "file:///data/awards.jsonl",
        )


def extracted(op: PatsnapAwardOperator) -> dict[str, Any]:
    """What the OpenLineage listener gets from the operator after a successful run, as JSON."""
    from airflow.providers.openlineage.extractors.manager import ExtractorManager
    from airflow.utils.state import TaskInstanceState
    from openlineage.client.serde import Serde

    lineage = ExtractorManager().extract_metadata(
        dagrun=SimpleNamespace(run_id="manual__1"),
        task=op,
        task_instance_state=TaskInstanceState.SUCCESS,
        task_instance=SimpleNamespace(task_id=op.task_id),
    )
    return {
        "inputs": [json.loads(Serde.to_json(dataset)) for dataset in lineage.inputs],
        "outputs": [json.loads(Serde.to_json(dataset)) for dataset in lineage.outputs],
    }


def check_facets(facets: dict[str, Any], sandbox: Sandbox, namespace: str, name: str, rows: int) -> None:
    assert facets["inputs"] == [
        {"namespace": sandbox.base_url, "name": AWARD_PATH, "facets": {}, "inputFacets": {}}
    ]
    [output] = facets["outputs"]
    assert (output["namespace"], output["name"]) == (namespace, name)
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == rows > 0
    fields = output["facets"]["schema"]["fields"]
    assert [field["name"] for field in fields][:3] == ["record_key", "pn", "patent_id"]
    assert all(field["type"] and field["description"] for field in fields)


def documented(name: str) -> Any:
    return json.loads(dict(CAPTURED_BLOCK.findall(LINEAGE_DOC.read_text(encoding="utf-8")))[name])


def without_boilerplate(value: Any) -> Any:
    """``value`` without the keys OpenLineage adds to every facet (``_producer``, ``_schemaURL``) and the
    empty ``fields`` of each schema field."""
    if isinstance(value, list):
        return [without_boilerplate(item) for item in value]
    if isinstance(value, dict):
        return {
            key: without_boilerplate(item)
            for key, item in value.items()
            if key not in ("_producer", "_schemaURL") and not (key == "fields" and item == [])
        }
    return value


def as_documented(facets: dict[str, Any], namespace: str, name: str, last_fields: int) -> dict[str, Any]:
    """The facets as docs/lineage.md shows them: without boilerplate, with its sandbox address and
    output name (for this run's port, temporary directory and database), the schema's fields cut to
    the first four, "...", and the last ``last_fields``."""
    shown = without_boilerplate(facets)
    shown["inputs"][0]["namespace"] = DOC_BASE_URL
    [output] = shown["outputs"]
    output["namespace"], output["name"] = namespace, name
    fields = output["facets"]["schema"]["fields"]
    output["facets"]["schema"]["fields"] = [*fields[:4], "...", *fields[-last_fields:]]
    return shown


def test_facets_of_a_postgres_table_name_it_as_the_postgres_hook_does(
    patsnap: Sandbox, postgres_conn: str
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    from airflow.providers.openlineage.sqlparser import SQLParser

    op = PatsnapAwardOperator(
        task_id="awards", patent_numbers=IDS, sql_conn_id=postgres_conn, write_mode="history"
    )
    summary = op.execute(context={})

    hook = BaseHook.get_connection(postgres_conn).get_hook()
    info = hook.get_openlineage_database_info(BaseHook.get_connection(postgres_conn))
    schema = hook.get_openlineage_default_schema()
    facets = extracted(op)
    check_facets(
        facets,
        patsnap,
        SQLParser.create_namespace(info),
        f"{info.database}.{schema}.patsnap_award",
        summary["rows"],
    )
    history_columns = [field["name"] for field in facets["outputs"][0]["facets"]["schema"]["fields"]][-5:]
    assert history_columns == ["version_key", "row_hash", "valid_from", "valid_to", "is_current"]
    shown = as_documented(facets, "postgres://127.0.0.1:5432", "warehouse.public.patsnap_award", 5)
    assert shown == documented("postgres")


def test_facets_of_a_sqlite_table_and_an_ndjson_file(
    patsnap: Sandbox, sqlite_conn: str, tmp_path: Any
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    table_op = PatsnapAwardOperator(task_id="awards", patent_numbers=IDS, sql_conn_id=sqlite_conn)
    file_op = PatsnapAwardOperator(
        task_id="awards", patent_numbers=IDS, output_path=f"{tmp_path}/awards.jsonl"
    )

    table_summary = table_op.execute(context={})
    file_summary = file_op.execute(context={})

    table_facets, file_facets = extracted(table_op), extracted(file_op)
    check_facets(
        table_facets, patsnap, f"sqlite://{tmp_path}/warehouse.db", "patsnap_award", table_summary["rows"]
    )
    check_facets(file_facets, patsnap, "file", f"{tmp_path}/awards.jsonl", file_summary["rows"])
    assert as_documented(table_facets, "sqlite:///data/warehouse.db", "patsnap_award", 1) == documented(
        "sqlite"
    )
    assert as_documented(file_facets, "file", "/data/patsnap/awards.jsonl", 1) == documented("ndjson")


def test_a_mixed_case_postgres_host_is_named_as_the_postgres_provider_names_it(
    patsnap: Sandbox, postgres_server: str, monkeypatch: pytest.MonkeyPatch, outlet_events: OutletEvents
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    from airflow.providers.openlineage.sqlparser import SQLParser
    from airflow.providers.postgres.assets.postgres import convert_asset_to_openlineage

    fresh = json.loads(fresh_postgres_database(postgres_server))
    settings = {**fresh, "host": "LocalHost"}  # resolves to the server's 127.0.0.1
    monkeypatch.setenv("AIRFLOW_CONN_PG_MIXED", json.dumps(settings))
    op = PatsnapAwardOperator(task_id="awards", patent_numbers=IDS, sql_conn_id="pg_mixed", emit_asset=True)
    events = outlet_events
    op.execute(context={"outlet_events": events})

    [output] = extracted(op)["outputs"]
    port, database = settings["port"], settings["schema"]
    connection = BaseHook.get_connection("pg_mixed")
    info = connection.get_hook().get_openlineage_database_info(connection)
    assert output["namespace"] == SQLParser.create_namespace(info) == f"postgres://localhost:{port}"
    assert output["name"] == f"{database}.public.patsnap_award"
    # The asset attached to the alias is the same table to the postgres provider's conversion.
    [(alias, outlet, extra)] = events.added
    assert alias == op.asset_alias and extra == {"endpoint": "P032", "rows": output_rows(output)}
    assert outlet.uri == f"postgres://localhost:{port}/{database}/public/patsnap_award"
    converted = convert_asset_to_openlineage(outlet, None)
    assert (converted.namespace, converted.name) == (output["namespace"], output["name"])


@pytest.mark.parametrize("table", ["PATSNAP_AWARD", "public.Patsnap_Award"])
def test_a_postgres_table_has_one_name_however_it_is_spelled(
    patsnap: Sandbox,
    postgres_server: str,
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    outlet_events: OutletEvents,
) -> None:
    """PostgreSQL folds unquoted names to lower case: the asset URI named before a run, the summary's
    destination, the run's lineage and the asset it attaches all name public.patsnap_award."""
    settings = json.loads(fresh_postgres_database(postgres_server))
    monkeypatch.setenv("AIRFLOW_CONN_PG_SPELLED", json.dumps(settings))
    port, database = settings["port"], settings["schema"]
    op = PatsnapAwardOperator(
        task_id="a", patent_numbers=IDS, sql_conn_id="pg_spelled", table=table, emit_asset=True
    )
    uri = f"postgres://127.0.0.1:{port}/{database}/public/patsnap_award"
    assert asset_uri(op) == uri

    summary = op.execute(context={"outlet_events": outlet_events})

    assert summary["destination"] == "pg_spelled:public.patsnap_award"
    assert op._lineage_run is not None and op._lineage_run.destination is not None
    assert op._lineage_run.destination.uri == uri
    assert [asset.uri for _, asset, _ in outlet_events.added] == [uri]
    assert op._lineage_run.destination.name == f"{database}.public.patsnap_award"
    if importlib.util.find_spec("airflow.providers.openlineage") is not None:
        [output] = extracted(op)["outputs"]
        assert output["name"] == f"{database}.public.patsnap_award"


def test_a_table_is_named_where_the_search_path_puts_it(
    patsnap: Sandbox, postgres_server: str, monkeypatch: pytest.MonkeyPatch, outlet_events: OutletEvents
) -> None:
    """An unqualified table goes where the connection's search_path puts it; the run names it there,
    in its lineage and in the asset it attaches to its alias (named at run time, nothing to differ)."""
    from tests.helpers import postgres_admin

    settings = json.loads(fresh_postgres_database(postgres_server))
    database = settings["schema"]
    with postgres_admin(postgres_server) as admin:
        admin.execute(f"ALTER DATABASE {database} SET search_path = enrich, public")
    monkeypatch.setenv("AIRFLOW_CONN_PG_PATH", json.dumps(settings))
    BaseHook.get_connection("pg_path").get_hook().run("CREATE SCHEMA enrich")
    op = PatsnapAwardOperator(task_id="a", patent_numbers=IDS, sql_conn_id="pg_path", emit_asset=True)

    summary = op.execute(context={"outlet_events": outlet_events})

    assert summary["destination"] == "pg_path:enrich.patsnap_award"
    assert op._lineage_run is not None and op._lineage_run.destination is not None
    assert op._lineage_run.destination.name == f"{database}.enrich.patsnap_award"
    uri = f"postgres://127.0.0.1:{settings['port']}/{database}/enrich/patsnap_award"
    assert [asset.uri for _, asset, _ in outlet_events.added] == [uri]


@pytest.mark.parametrize("engine", ["mariadb", "duckdb"])
def test_mariadb_and_duckdb_tables_are_named_by_their_identity(
    patsnap: Sandbox, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """MySQL/MariaDB: ``mysql://host:port``, ``<database>.<table>`` (its schema is the database, names
    kept as written), as the MySQL hook names it for OpenLineage; DuckDB: ``duckdb://<file>`` and
    ``main.<table>``, this provider's own convention."""
    if engine == "mariadb":
        settings = json.loads(fresh_mariadb_database(request.getfixturevalue("mariadb_server")))
        monkeypatch.setenv("AIRFLOW_CONN_NAMED", json.dumps(settings))
        namespace = f"mysql://127.0.0.1:{settings['port']}"
        name = f"{settings['schema']}.patsnap_award"
        uri = f"{namespace}/{settings['schema']}/patsnap_award"
    else:
        path = request.getfixturevalue("tmp_path") / "named.duckdb"
        monkeypatch.setenv("AIRFLOW_CONN_NAMED", json.dumps({"conn_type": "duckdb", "host": str(path)}))
        namespace, name = f"duckdb://{path}", "main.patsnap_award"
        uri = (
            f"duckdb:{path}/main/patsnap_award"  # stored as Airflow stores sqlite:///path: no empty authority
        )
    op = PatsnapAwardOperator(task_id="a", patent_numbers=IDS, sql_conn_id="named", emit_asset=True)
    assert asset_uri(op) == uri

    op.execute(context={})

    assert op._lineage_run is not None and op._lineage_run.destination is not None
    destination = op._lineage_run.destination
    assert (destination.namespace, destination.name, destination.uri) == (namespace, name, uri)
    if importlib.util.find_spec("airflow.providers.openlineage") is not None:
        [output] = extracted(op)["outputs"]
        assert (output["namespace"], output["name"]) == (namespace, name)


@pytest.mark.parametrize(("conn_type", "port"), [("mysql", 3306), ("mssql", 1433)])
def test_a_table_asset_gets_the_providers_default_port_and_a_lower_case_host(
    monkeypatch: pytest.MonkeyPatch, conn_type: str, port: int
) -> None:
    # MySqlHook's and MsSqlHook's get_openlineage_database_info use these ports when none is set.
    connection = {"conn_type": conn_type, "host": "DB.Example.COM", "schema": "wh"}
    monkeypatch.setenv("AIRFLOW_CONN_DB", json.dumps(connection))
    op = PatsnapAwardOperator(task_id="a", patent_numbers=IDS, sql_conn_id="db", emit_asset=True)
    assert asset_uri(op) == f"{conn_type}://db.example.com:{port}/wh/patsnap_award"


def test_a_table_its_hook_cannot_name_keeps_the_rule_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    if importlib.util.find_spec("airflow.providers.amazon") is not None:
        pytest.skip("with the amazon provider, the postgres hook names a Redshift table itself")
    redshift = {"conn_type": "postgres", "host": "Cluster.abc.redshift.example", "port": 5439, "schema": "wh"}
    monkeypatch.setenv("AIRFLOW_CONN_RS", json.dumps({**redshift, "extra": {"redshift": True}}))
    destination = destination_dataset("rs", "patsnap_award", None)
    assert destination is not None

    named = named_by_its_hook(destination)

    assert (named.namespace, named.name) == (
        "postgres://cluster.abc.redshift.example:5439",
        "wh.public.patsnap_award",
    )
    assert "its hook could not" in caplog.text and "amazon" in caplog.text


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_history_row_count_is_the_runs_current_rows_not_the_versions_it_wrote(
    patsnap: Sandbox, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    conn_id = "warehouse"
    if database == "sqlite":
        request.getfixturevalue("sqlite_conn")
    else:
        monkeypatch.setenv(
            "AIRFLOW_CONN_WAREHOUSE", fresh_postgres_database(request.getfixturevalue("postgres_server"))
        )
    first = PatsnapAwardOperator(task_id="a", patent_numbers=IDS, sql_conn_id=conn_id, write_mode="history")
    first.execute(context={})
    rerun = PatsnapAwardOperator(task_id="a", patent_numbers=IDS, sql_conn_id=conn_id, write_mode="history")

    summary = rerun.execute(context={})  # the same data: not a row written

    [output] = extracted(rerun)["outputs"]
    [(current,)] = (
        BaseHook.get_connection(conn_id)
        .get_hook()
        .get_records("SELECT COUNT(*) FROM patsnap_award WHERE is_current = 1")
    )
    assert summary["versions_opened"] == 0
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == summary["rows"] == current > 0


# Airflow's own provider discovery reads each installed provider's package and its get_provider_info.
PARSE_PROBE = """
import json, sys
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
for task_id, destination in (
    ("postgres", {"sql_conn_id": "pg_parse"}),  # defined nowhere: never read while parsing
    ("sqlite", {"sql_conn_id": "warehouse"}),
    ("file", {"output_path": "/data/awards.jsonl"}),
):
    op = PatsnapAwardOperator(task_id=task_id, patent_numbers=["CN1A"], emit_asset=True, **destination)
    assert op.outlets == [op.asset_alias]
discovery = {"airflow.providers.openlineage", "airflow.providers.openlineage.get_provider_info"}
print("OPENLINEAGE", json.dumps(sorted(m for m in sys.modules if "openlineage" in m and m not in discovery)))
"""


def test_building_operators_with_assets_imports_nothing_of_openlineage() -> None:
    """What a DAG file does when it is parsed, in a fresh interpreter (where the provider is installed)."""
    pytest.importorskip("airflow.providers.openlineage")

    result = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE], capture_output=True, text=True, timeout=120, check=True
    )

    [line] = [line for line in result.stdout.splitlines() if line.startswith("OPENLINEAGE ")]
    assert json.loads(line.removeprefix("OPENLINEAGE ")) == []


def test_a_task_that_wrote_nothing_reports_no_datasets() -> None:
    pytest.importorskip("airflow.providers.openlineage")
    op = PatsnapAwardOperator(task_id="awards", patent_numbers=IDS, sql_conn_id="x")
    assert extracted(op) == {"inputs": [], "outputs": []}


@pytest.mark.parametrize(
    ("output_path", "map_index", "written"),
    [
        ("{tmp}/out/", -1, "{tmp}/out/awards/manual__2026-01-10T09_00_00_00_00.jsonl"),
        ("{tmp}/existing", -1, "{tmp}/existing/awards/manual__2026-01-10T09_00_00_00_00.jsonl"),
        ("file://{tmp}/out/", 3, "{tmp}/out/awards/manual__2026-01-10T09_00_00_00_00_3.jsonl"),
        ("{tmp}/awards.jsonl", 3, "{tmp}/awards_3.jsonl"),
    ],
    ids=["folder", "existing-folder", "folder-mapped", "file-mapped"],
)
def test_the_output_names_the_file_the_run_wrote(
    patsnap: Sandbox, tmp_path: Path, output_path: str, map_index: int, written: str
) -> None:
    """A folder gets <task_id>/<run_id>.jsonl, a mapped task its own file: lineage names that file, as
    the summary's destination does, not the folder or the path as given."""
    pytest.importorskip("airflow.providers.openlineage")
    (tmp_path / "existing").mkdir()
    op = PatsnapAwardOperator(
        task_id="awards", patent_numbers=IDS, output_path=output_path.format(tmp=tmp_path)
    )
    context = {"run_id": "manual__2026-01-10T09:00:00+00:00", "ti": SimpleNamespace(map_index=map_index)}

    summary = op.execute(context=context)

    path = written.format(tmp=tmp_path)
    assert Path(path).read_text(encoding="utf-8").count("\n") == summary["rows"] > 0
    [output] = extracted(op)["outputs"]
    assert (output["namespace"], output["name"]) == ("file", path)
    assert file_dataset(summary["destination"]) == file_dataset(path)  # one name: the sink's location


def test_facets_of_a_parquet_file_name_the_file_as_for_ndjson(patsnap: Sandbox, tmp_path: Any) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    op = PatsnapAwardOperator(task_id="awards", patent_numbers=IDS, output_path=f"{tmp_path}/awards.parquet")
    summary = op.execute(context={})

    facets = extracted(op)
    check_facets(facets, patsnap, "file", f"{tmp_path}/awards.parquet", summary["rows"])
    assert as_documented(facets, "file", "/data/patsnap/awards.parquet", 1) == documented("parquet")
    s3 = PatsnapAwardOperator(
        task_id="c", patent_numbers=IDS, output_path="s3://aws_prod@bucket/patsnap/a.parquet", emit_asset=True
    )
    assert [outlet.name for outlet in s3.outlets] == ["patsnap:c:s3://bucket/patsnap/a.parquet"]
    assert asset_uri(s3) == "s3://bucket/patsnap/a.parquet"

    folder = PatsnapAwardOperator(
        task_id="awards", patent_numbers=IDS, output_path=f"{tmp_path}/out/", file_format="parquet"
    )
    folder.execute(context={"run_id": "manual__1", "ti": SimpleNamespace(map_index=2)})
    [output] = extracted(folder)["outputs"]
    assert (output["namespace"], output["name"]) == ("file", f"{tmp_path}/out/awards/manual__1_2.parquet")
