"""Fixtures for hook tests over loopback: the sandbox as ``patsnap_default``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from airflow_provider_patsnap.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(port=0)) as sb:
        monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", sb.connection_json(auth="secret", qps=0))
        yield sb


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep retries quick over loopback: the backoff itself is tested in the unit tier, on a fake clock."""
    monkeypatch.setattr("airflow_provider_patsnap.hooks._transport.MAX_RETRY_WAIT", 0.05)
