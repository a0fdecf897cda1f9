"""Fixtures for the data operators: the sandbox over loopback, a SQLite file, a throwaway PostgreSQL and
MariaDB, and a DuckDB file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_patsnap.sandbox import Sandbox
from tests.helpers import OutletEvents
from tests.mariadb_server import INSTALL_HINT as MARIADB_INSTALL_HINT
from tests.mariadb_server import MariaDBServer, mariadb_available
from tests.postgres_cluster import postgres_server_json


@pytest.fixture
def patsnap(patsnap_sandbox: Sandbox, patsnap_conn: str) -> Sandbox:
    """The plugin's sandbox, fresh for each test, as ``patsnap_default`` (no client-side rate limit)."""
    return patsnap_sandbox


@pytest.fixture
def outlet_events(monkeypatch: pytest.MonkeyPatch) -> OutletEvents:
    """Airflow's ``context["outlet_events"]``, recording what a task attaches to its asset alias. These
    tasks run outside any DAG Airflow parsed: Airflow 2.11's check that its metadata DB knows the alias
    (``_compat.asset_alias_known``, tested under `airflow dags test`) is taken as passed."""
    from airflow_provider_patsnap.operators import _batch

    monkeypatch.setattr(_batch, "asset_alias_known", lambda name: True)
    return OutletEvents()


@pytest.fixture
def sqlite_conn(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection id ``warehouse`` pointing at a fresh SQLite file; the path is in ``SQLITE_PATH``."""
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f'{{"conn_type": "sqlite", "host": "{path}"}}')
    monkeypatch.setenv("SQLITE_PATH", str(path))
    return "warehouse"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth); yields its connection JSON."""
    yield from postgres_server_json()


@pytest.fixture
def postgres_conn(postgres_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_PG_WAREHOUSE", postgres_server)
    return "pg_warehouse"


@pytest.fixture
def fresh_postgres_conn(postgres_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection id ``pg_fresh`` to a new, empty database of the PostgreSQL fixture's server."""
    from tests.helpers import fresh_postgres_database

    monkeypatch.setenv("AIRFLOW_CONN_PG_FRESH", fresh_postgres_database(postgres_server))
    return "pg_fresh"


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[str]:
    """A throwaway MariaDB server on 127.0.0.1 (database and user ``patsnap``, utf8mb4); yields its
    connection JSON."""
    if not mariadb_available():
        if os.environ.get("CI"):
            pytest.fail(MARIADB_INSTALL_HINT)
        pytest.skip(MARIADB_INSTALL_HINT)
    with MariaDBServer() as server:
        yield server.connection_json


@pytest.fixture
def mariadb_conn(mariadb_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_MARIADB_WAREHOUSE", mariadb_server)
    return "mariadb_warehouse"


@pytest.fixture
def duckdb_conn(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection id ``duck_warehouse`` pointing at a fresh DuckDB file (the duckdb provider's hook)."""
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_DUCK_WAREHOUSE", f'{{"conn_type": "duckdb", "host": "{path}"}}')
    return "duck_warehouse"
