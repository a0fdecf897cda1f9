"""Fixtures shared by the integration tiers' folders: a throwaway redis-server (the shared rate limit)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.redis_server import INSTALL_HINT, RedisServer, redis_server_binary

#: The Airflow connection id the Redis tests name in the PatSnap connection's rate_limit_redis_conn_id.
REDIS_CONN_ID = "redis_rate_limit"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server on 127.0.0.1 for the session (no persistence); each test starts it empty."""
    if redis_server_binary() is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_conn(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``redis_rate_limit``: an Airflow Redis connection to the session's server, emptied first."""
    redis_server.client().flushall()
    monkeypatch.setenv(f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}", redis_server.connection_json)
    return REDIS_CONN_ID
