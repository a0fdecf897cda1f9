"""System tier: real `airflow` CLI subprocesses (`dags test`, `providers list`, `connections test`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_patsnap.sandbox import Sandbox


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
