"""System tier: real `airflow` CLI subprocesses (`dags test`, `providers list`, `connections test`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_patsnap.sandbox import Sandbox


@pytest.fixture
def sandbox(patsnap_sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    return patsnap_sandbox_factory()


@pytest.fixture
def start_sandbox(patsnap_sandbox_factory: Callable[..., Sandbox]) -> Callable[..., Sandbox]:
    return patsnap_sandbox_factory
