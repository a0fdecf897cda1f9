"""System tier: real `airflow` CLI subprocesses (`dags test`, `providers list`, `connections test`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_provider_patsnap.sandbox import Sandbox
from tests.postgres_cluster import INSTALL_HINT, PostgresCluster, postgres_bin_dir


@pytest.fixture
def sandbox(patsnap_sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    return patsnap_sandbox_factory()


@pytest.fixture
def start_sandbox(patsnap_sandbox_factory: Callable[..., Sandbox]) -> Callable[..., Sandbox]:
    return patsnap_sandbox_factory


@pytest.fixture(scope="session")
def metadata_db() -> None:
    """This session's metadata DB, migrated: Airflow 2.11 reads it when it parses a DAG scheduled on a
    DatasetAlias (to resolve the alias), as its dag-processor always can."""
    from airflow_provider_patsnap._compat import AIRFLOW_V_3

    if AIRFLOW_V_3:
        return
    migrated = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth); yields its connection JSON."""
    if postgres_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    with PostgresCluster() as cluster:
        yield cluster.connection_json
