"""Fixtures for hook tests over loopback: the plugin's sandbox as ``patsnap_default``."""

from __future__ import annotations

import pytest

from airflow_provider_patsnap.sandbox import Sandbox


@pytest.fixture
def sandbox(patsnap_sandbox: Sandbox, patsnap_conn: str) -> Sandbox:
    """The plugin's sandbox as ``patsnap_default`` (client id + secret, no client rate limit)."""
    return patsnap_sandbox


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep retries quick over loopback: the backoff itself is tested in the unit tier, on a fake clock."""
    monkeypatch.setattr("airflow_provider_patsnap.hooks._transport.MAX_RETRY_WAIT", 0.05)
