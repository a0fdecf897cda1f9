"""Unit tier: no sockets (requests-mock stands in for PatSnap), no sleeps (a fake clock)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests_mock as requests_mock_module

from tests.helpers import BASE_URL, TOKEN_URL, FakeClock


@pytest.fixture(autouse=True)
def _no_sockets_no_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit tier's promise, enforced: a test that opens a socket or sleeps fails."""
    import socket
    import time

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(
            "a unit test must not open a socket or sleep: use requests-mock / the fake clock"
        )

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket.socket, "bind", refuse)
    monkeypatch.setattr(time, "sleep", refuse)


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    from airflow_provider_patsnap.hooks._shared import reset_shared_state

    fake = FakeClock()
    reset_shared_state(clock=fake)
    yield fake
    reset_shared_state()


@pytest.fixture
def vendor(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[requests_mock_module.Mocker]:
    """``patsnap_default`` at a mocked PatSnap (client id + secret, qps 0, 3 retries, timeout 2 s)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        json.dumps(
            {
                "conn_type": "patsnap",
                "host": BASE_URL,
                "login": "unit-client",
                "password": "unit-secret",
                "extra": {"qps": 0, "max_retries": 3, "timeout": 2},
            }
        ),
    )
    with requests_mock_module.Mocker(case_sensitive=True) as mocker:
        mocker.post(TOKEN_URL, json={"token": "tok-1", "token_type": "BearerToken", "expires_in": 1799})
        yield mocker
