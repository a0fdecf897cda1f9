"""System tier: real `airflow` CLI subprocesses (`dags test`, `providers list`, `connections test`)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from airflow_provider_patsnap.sandbox import Sandbox
from tests.postgres_cluster import postgres_server_json
from tests.release import Artifacts, FreshVenv, build_artifacts, install_as_the_readme_says


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
    yield from postgres_server_json()


def _report(request: pytest.FixtureRequest, line: str) -> None:
    """A timing line in pytest's output even when output is captured (CI keeps an eye on the budget)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Artifacts:
    """The sdist and the wheel, built by ``python -m build`` from a clean copy of the project."""
    start = time.monotonic()
    built = build_artifacts(tmp_path_factory.mktemp("build"))
    _report(request, f"release artifacts: python -m build in {time.monotonic() - start:.0f} s")
    return built


@pytest.fixture(scope="session")
def fresh_venv(
    artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> FreshVenv:
    """A fresh venv where the README's install block ran as written (with CI's pins): plain pip, the
    wheel, this suite's Airflow version."""
    return install_as_the_readme_says(artifacts, tmp_path_factory.mktemp("fresh"), partial(_report, request))
