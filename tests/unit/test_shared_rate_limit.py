"""One QPS for a deployment (docs/performance.md): the connection extra that opts in, and the parts of
the Redis limiter that need no Redis. Everything that talks to a real redis-server is in
tests/integration/hook/test_redis_limiter.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_patsnap.connection import ConnectionSettingsError, parse_connection


def connection(**extra: Any) -> SimpleNamespace:
    return SimpleNamespace(
        conn_id="patsnap_x",
        host="https://patsnap.test",
        port=None,
        login="id",
        password="secret",
        extra_dejson=extra,
    )


@pytest.mark.parametrize(
    "value, parsed",
    [(None, None), ("", None), ("   ", None), ("***", None), (" redis_patsnap ", "redis_patsnap")],
    ids=["absent", "empty", "blank", "masked", "padded"],
)
def test_the_redis_extra_names_a_connection_or_nothing(value: str | None, parsed: str | None) -> None:
    extra = {} if value is None else {"rate_limit_redis_conn_id": value}
    assert parse_connection(connection(**extra)).rate_limit_redis_conn_id == parsed


@pytest.mark.parametrize(
    "value, message",
    [
        (6379, "must be the id of an Airflow connection, got a int"),
        ({"host": "redis"}, "got a dict"),
        ("redis default", "no spaces"),
        ("r" * 251, "at most 250 characters"),
    ],
    ids=["number", "object", "space", "long"],
)
def test_a_bad_redis_extra_is_named_before_any_call(value: Any, message: str) -> None:
    with pytest.raises(ConnectionSettingsError, match="extra 'rate_limit_redis_conn_id'") as raised:
        parse_connection(connection(rate_limit_redis_conn_id=value))
    assert message in str(raised.value)
