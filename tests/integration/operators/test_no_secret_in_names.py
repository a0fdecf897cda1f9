"""No credential leaves through a name: lineage namespaces and names, asset URIs, the summary, the log.

OpenLineage events go to a lineage backend, which Airflow's log masker never sees. Every connection a
data task names carries a distinctive password here: the PatSnap connection's host
(``http://user:password@host``), a PostgreSQL connection's password, a SQLite path with a query string,
object storage with credentials (``s3://key:secret@bucket/...``, ``file://user:password@/...``) or a
connection id in the URL. Each run's OperatorLineage, outlets, summary and every log record are searched
for them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sandbox import Sandbox
from tests.helpers import CONN_ENV, OutletEvents, fresh_postgres_database, numbers

IDS = numbers(12, start=170000000)
PATSNAP_PASSWORD = "PW-patsnap-host-51c3"
POSTGRES_PASSWORD = "PW-postgres-8e2d"
SQLITE_SECRET = "PW-sqlite-query-77a1"
S3_SECRET = "PW-s3-secret-0b9f"
FILE_PASSWORD = "PW-file-userinfo-4d2e"
S3_CONN_ID = "aws_conn_c5e1"
SECRETS = (PATSNAP_PASSWORD, POSTGRES_PASSWORD, SQLITE_SECRET, S3_SECRET, FILE_PASSWORD, S3_CONN_ID)


@pytest.fixture
def patsnap_with_user_info(patsnap: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """``patsnap_default`` at the sandbox, its host carrying user info with a password."""
    connection = json.loads(patsnap.connection_json(qps=0, timeout=5))
    connection["host"] = patsnap.base_url.replace("http://", f"http://gateway-user:{PATSNAP_PASSWORD}@")
    monkeypatch.setenv(CONN_ENV, json.dumps(connection))
    return patsnap


@pytest.fixture
def memory_s3() -> Iterator[Any]:
    """``s3://`` served by an in-memory filesystem (Airflow's object storage, no network), for the
    connection ids the URLs below name."""
    from fsspec.implementations.memory import MemoryFileSystem

    try:
        from airflow.sdk.io import store
    except ImportError:  # Airflow 2.11
        from airflow.io import store  # type: ignore[no-redef]

    filesystem = MemoryFileSystem()
    aliases = ["s3", f"s3-AKIAKEY:{S3_SECRET}", f"s3-{S3_CONN_ID}"]
    for alias in aliases:
        store.attach("s3", alias=alias, fs=filesystem)
    yield filesystem
    for alias in aliases:
        store._STORE_CACHE.pop(alias, None)
    filesystem.rm("/", recursive=True)


def lineage_json(op: PatsnapAwardOperator) -> dict[str, Any]:
    """The OperatorLineage the operator hands the OpenLineage listener, as the JSON it sends."""
    from openlineage.client.serde import Serde

    lineage = op.get_openlineage_facets_on_complete(SimpleNamespace(task_id=op.task_id))
    return {
        "inputs": [json.loads(Serde.to_json(dataset)) for dataset in lineage.inputs],
        "outputs": [json.loads(Serde.to_json(dataset)) for dataset in lineage.outputs],
    }


def emitted(
    op: PatsnapAwardOperator, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """Run ``op``; everything it emitted: lineage, outlets (the alias it declares and the asset it
    attaches), summary and the log."""
    events = OutletEvents()  # what the task attaches to its asset alias (emit_asset)
    summary = op.execute(context={"run_id": "manual__2026-01-10", "outlet_events": events})
    printed = capsys.readouterr()  # Airflow 3 logs a task through structlog, to stdout
    log = (
        [record.getMessage() for record in caplog.records]
        + printed.out.splitlines()
        + printed.err.splitlines()
    )
    assert any("PatSnap P032 Award: " in line for line in log)  # the task's own log was captured
    return {
        "lineage": lineage_json(op),
        "outlets": [outlet.name for outlet in op.outlets] + [str(asset.uri) for _, asset, _ in events.added],
        "summary": summary,
        "log": log,
    }


def assert_no_secret(everything: dict[str, Any]) -> None:
    text = json.dumps(everything, ensure_ascii=False, default=str)
    assert [secret for secret in SECRETS if secret in text] == [], text
    assert "gateway-user" not in text and "AKIAKEY" not in text  # nor the user names


@pytest.fixture(autouse=True)
def _aliases_known(outlet_events: OutletEvents) -> None:
    """Each task's asset alias counts as known to Airflow's metadata DB (see the ``outlet_events``
    fixture), so the asset it attaches is searched too."""


@pytest.fixture(autouse=True)
def _every_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def test_a_postgres_table_and_a_patsnap_host_with_passwords(
    patsnap_with_user_info: Sandbox,
    postgres_server: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    settings = {**json.loads(fresh_postgres_database(postgres_server)), "password": POSTGRES_PASSWORD}
    monkeypatch.setenv("AIRFLOW_CONN_PG_SECRET", json.dumps(settings))
    op = PatsnapAwardOperator(task_id="a", patent_numbers=IDS, sql_conn_id="pg_secret", emit_asset=True)

    everything = emitted(op, caplog, capsys)

    assert_no_secret(everything)
    [source] = everything["lineage"]["inputs"]
    assert source["namespace"] == patsnap_with_user_info.base_url  # the host, without its user info
    [output] = everything["lineage"]["outputs"]
    assert output["namespace"] == f"postgres://127.0.0.1:{settings['port']}"


def test_a_sqlite_path_with_a_query_string(
    patsnap_with_user_info: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    database = tmp_path / "warehouse.db"
    host = f"{database}?cache=private&token={SQLITE_SECRET}"  # SQLite's URI parameters
    monkeypatch.setenv("AIRFLOW_CONN_LITE", json.dumps({"conn_type": "sqlite", "host": host}))
    op = PatsnapAwardOperator(task_id="a", patent_numbers=IDS, sql_conn_id="lite", emit_asset=True)

    everything = emitted(op, caplog, capsys)

    assert_no_secret(everything)
    [output] = everything["lineage"]["outputs"]
    assert (output["namespace"], output["name"]) == (f"sqlite://{database}", "patsnap_award")
    assert everything["outlets"] == ["patsnap:a:lite/patsnap_award", f"sqlite:{database}/patsnap_award"]
    assert everything["summary"]["rows"] > 0


@pytest.mark.parametrize(
    ("output_path", "namespace", "name"),
    [
        (f"s3://AKIAKEY:{S3_SECRET}@bucket/patsnap/awards.jsonl", "s3://bucket", "patsnap/awards.jsonl"),
        (f"s3://{S3_CONN_ID}@bucket/patsnap/awards.jsonl", "s3://bucket", "patsnap/awards.jsonl"),
    ],
    ids=["key-and-secret", "connection-id"],
)
def test_object_storage_with_credentials_in_the_url(
    patsnap_with_user_info: Sandbox,
    memory_s3: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    output_path: str,
    namespace: str,
    name: str,
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    op = PatsnapAwardOperator(task_id="a", patent_numbers=IDS, output_path=output_path, emit_asset=True)

    everything = emitted(op, caplog, capsys)

    assert_no_secret(everything)
    [output] = everything["lineage"]["outputs"]
    assert (output["namespace"], output["name"]) == (namespace, name)
    assert everything["outlets"] == [f"patsnap:a:{namespace}/{name}", f"{namespace}/{name}"]
    assert everything["summary"]["destination"] == f"{namespace}/{name}"
    assert memory_s3.cat_file(f"/bucket/{name}").count(b"\n") == everything["summary"]["rows"] > 0


def test_a_local_file_url_with_user_info(
    patsnap_with_user_info: Sandbox,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    path = tmp_path / "awards.jsonl"
    op = PatsnapAwardOperator(
        task_id="a",
        patent_numbers=IDS,
        output_path=f"file://someone:{FILE_PASSWORD}@{path}",
        emit_asset=True,
    )

    everything = emitted(op, caplog, capsys)

    assert_no_secret(everything)
    [output] = everything["lineage"]["outputs"]
    assert (output["namespace"], output["name"]) == ("file", str(path))
    assert everything["summary"]["destination"] == f"file://{path}"
    assert everything["summary"]["rejects_destination"] == f"file://{tmp_path}/awards.rejects.jsonl"
    assert path.read_text(encoding="utf-8").count("\n") == everything["summary"]["rows"] > 0


def test_the_connection_test_names_the_host_without_its_user_info(patsnap_with_user_info: Sandbox) -> None:
    from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

    hook = PatsnapHook()
    assert hook.test_connection() == (True, f"Token issued by {patsnap_with_user_info.base_url}")
    assert PATSNAP_PASSWORD not in repr(hook.settings)
    assert hook.scrub(f"error at http://gateway-user:{PATSNAP_PASSWORD}@host") == (
        "error at http://gateway-user:***@host"
    )
