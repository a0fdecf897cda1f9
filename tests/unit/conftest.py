"""Unit tier: no sockets (requests-mock stands in for PatSnap), no sleeps (a fake clock)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests_mock as requests_mock_module

from tests.helpers import BASE_URL, TOKEN_URL, FakeClock

#: The longest real wait a unit test may make: threads handing work over, never time passing.
MAX_REAL_WAIT = 0.05


@pytest.fixture(autouse=True)
def _no_sockets_no_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit tier's promise, enforced: a test that opens a socket or sleeps fails. A timed wait
    (``Event.wait(timeout)``, ``Condition.wait(timeout)``: how the real clock waits) longer than
    :data:`MAX_REAL_WAIT` is a sleep too; an untimed wait is one thread waiting for another."""
    import socket
    import threading
    import time

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(
            "a unit test must not open a socket or sleep: use requests-mock / the fake clock"
        )

    wait = threading.Condition.wait

    def bounded_wait(self: threading.Condition, timeout: float | None = None) -> bool:
        if timeout is not None and timeout > MAX_REAL_WAIT:
            raise AssertionError(
                f"a unit test must not wait {timeout} s for real: use the fake clock (the `clock` fixture)"
            )
        return wait(self, timeout)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket.socket, "bind", refuse)
    monkeypatch.setattr(time, "sleep", refuse)
    monkeypatch.setattr(threading.Condition, "wait", bounded_wait)


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
