"""Fixtures for the data operators: the sandbox over loopback, a SQLite file and a throwaway PostgreSQL."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_patsnap.sandbox import Sandbox, SandboxConfig
from tests.helpers import CONN_ENV, free_port


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(port=0, qps=0, latency=0.0)) as running:
        yield running


@pytest.fixture
def patsnap(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox as ``patsnap_default`` (no client-side rate limit), its request log cleared."""
    monkeypatch.setenv(CONN_ENV, sandbox.connection_json(qps=0))
    sandbox.clear_requests()
    return sandbox


@pytest.fixture
def sqlite_conn(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection id ``warehouse`` pointing at a fresh SQLite file; the path is in ``SQLITE_PATH``."""
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f'{{"conn_type": "sqlite", "host": "{path}"}}')
    monkeypatch.setenv("SQLITE_PATH", str(path))
    return "warehouse"


def _postgres_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth); yields its connection JSON."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        message = (
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin: "
            "install them with `apt-get install postgresql` (.ci/run does this in CI)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = tempfile.mkdtemp(prefix="patsnap-pg-")
    if as_postgres:
        shutil.chown(base, "postgres", "postgres")
    data, port = os.path.join(base, "data"), free_port()
    subprocess.run(
        [
            *as_postgres,
            f"{bin_dir}/initdb",
            "-D",
            data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_postgres, f"{bin_dir}/pg_ctl", "-D", data, "-o", options, "-l", f"{base}/log", "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield (
            f'{{"conn_type": "postgres", "host": "127.0.0.1", "port": {port}, '
            '"login": "postgres", "schema": "postgres"}'
        )
    finally:
        subprocess.run(
            [*as_postgres, f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_conn(postgres_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_PG_WAREHOUSE", postgres_server)
    return "pg_warehouse"
