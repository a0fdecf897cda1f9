"""Token answers of odd shapes from a loopback token endpoint, timed by a fake clock.

``expires_in`` is read as a lifetime only when it is one; anything else is the documented default (1800 s),
with a warning naming the value. A token under a field no public client uses fails saying which fields
the answer had (names only: never a value, least of all the token).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.exceptions import PatsnapError
from airflow_provider_patsnap.hooks._shared import reset_shared_state
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from tests.helpers import CONN_ENV, FakeClock, RawServer, envelope, http_response

PATH = AWARD.path
TOKEN_PATH = "/oauth/token"


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """The hook's clock (token lifetimes), moved only by the test."""
    fake = FakeClock()
    reset_shared_state(clock=fake)
    yield fake
    reset_shared_state()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RawServer]:
    peer = RawServer(default=http_response(200, envelope([]), Content_Type="application/json"))
    connection = peer.connection_json("token-secret", "token-client", qps=0, max_retries=0, timeout=5)
    monkeypatch.setenv(CONN_ENV, connection)
    yield peer
    peer.close()


def token_answer(body: dict[str, Any]) -> bytes:
    return http_response(200, json.dumps(body).encode(), Content_Type="application/json")


ODD = [True, False, -5, 0, float("nan"), 1e30, "1e30", 86401, "soon", [1799], {"s": 1799}]
GOOD = [1799, "1799", 1799.5, "1799.5"]


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Every log line: Python logging's, and Airflow 3's structlog output (printed)."""
    printed = capsys.readouterr()
    return [record.getMessage() for record in caplog.records] + (printed.out + printed.err).splitlines()


@pytest.mark.parametrize("expires_in", [*ODD, *GOOD, None], ids=repr)
def test_a_token_lives_its_lifetime_or_the_documented_default(
    server: RawServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    expires_in: Any,
) -> None:
    """Every value here gives a lifetime near 1800 s: one token serves calls at 0, 1000 and 1700 s, and
    one renewed 60 s before it ends serves the call at 1750 s. ``true`` used to be a 1 s lifetime (a token
    request per call), 1e30 a token kept for ever."""
    body = {"token": "tok", "token_type": "BearerToken"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    server.script(TOKEN_PATH, token_answer(body))
    hook = PatsnapHook()

    for moment in (0, 1000, 700):
        clock.advance(moment)
        hook.call("GET", PATH)
    assert len(server.requests_to(TOKEN_PATH)) == 1
    clock.advance(50)  # 1750 s: within the last 60 s of 1799 and of 1800
    hook.call("GET", PATH)

    assert len(server.requests_to(TOKEN_PATH)) == 2
    warned = [line for line in logged(caplog, capsys) if "expires_in" in line]
    if expires_in in ODD or expires_in != expires_in:  # NaN is not equal to itself
        assert warned  # as each token came (Airflow 2.11 prints what it logs as well)
        if not isinstance(expires_in, float):  # a JSON float arrives as its text
            assert all(f"expires_in={expires_in!r}" in line for line in warned)
    else:
        assert warned == []


DISTINCTIVE = "tok-Q7x3-distinctive-token-value"


def test_a_token_under_an_unknown_field_is_reported_by_field_names(
    server: RawServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = {
        "accessToken": DISTINCTIVE,
        "expiresIn": 1799,
        "status": "approved",
        "data": {"tokenValue": DISTINCTIVE, "token": 12345},
    }
    server.script(TOKEN_PATH, token_answer(answer))

    with pytest.raises(PatsnapError) as raised:
        PatsnapHook().call("GET", PATH)
    tested = PatsnapHook().test_connection()

    message = str(raised.value)
    assert message.startswith("PatSnap token request failed, HTTP 200: the answer has no token")
    assert "token, access_token, data.token or data.access_token" in message  # where we looked
    assert "accessToken, expiresIn, status, data, data.tokenValue, data.token" in message  # what it had
    assert "data.token is a number" in message
    assert tested == (False, message)
    for text in (message, repr(raised.value), *logged(caplog, capsys)):
        assert DISTINCTIVE not in text
    assert server.requests_to(PATH) == []  # no business call went out


def test_an_error_in_a_200_token_answer_is_still_the_vendors_error(server: RawServer) -> None:
    """An envelope that says it failed is classified by its code, not taken for an unknown shape."""
    refused = {"status": False, "error_code": 67200003, "error_msg": "bad client secret", "data": None}
    server.script(TOKEN_PATH, token_answer(refused))
    with pytest.raises(PatsnapError, match="error_code=67200003, HTTP 200: bad client secret"):
        PatsnapHook().call("GET", PATH)
