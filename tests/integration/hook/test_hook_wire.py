"""PatsnapHook on the wire: auth, envelope, typed errors, retries — against a scripted loopback server."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from airflow_provider_patsnap._compat import AirflowFailException
from airflow_provider_patsnap.connection import default_concurrency
from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.exceptions import (
    PatsnapAuthError,
    PatsnapError,
    PatsnapInputError,
    PatsnapInvalidInputError,
    PatsnapPermissionError,
    PatsnapQuotaError,
    PatsnapTransientError,
)
from airflow_provider_patsnap.hooks import _transport as hook_module
from airflow_provider_patsnap.hooks._envelope import parse_token_response
from airflow_provider_patsnap.hooks._transport import RateLimiter
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from tests.integration.hook.conftest import Reply, ScriptedServer, error, ok

PATH = AWARD.path


def test_one_token_serves_many_calls_and_both_credentials_are_sent(scripted: ScriptedServer) -> None:
    scripted.scripts[PATH] = [ok([])]
    hook = PatsnapHook()
    for _ in range(5):
        assert hook.call("GET", PATH, params={"patent_number": "CN1"}) == []
    assert len(scripted.business("/oauth/token")) == 1
    token_request = scripted.business("/oauth/token")[0]
    assert token_request.method == "POST"
    assert token_request.body == b"grant_type=client_credentials"
    assert token_request.headers["Authorization"].startswith("Basic ")
    for seen in scripted.business(PATH):
        assert seen.query["apikey"] == "scripted-client"
        assert seen.headers["Authorization"] == "Bearer tok-1"
        assert seen.headers["User-Agent"].startswith("airflow-provider-patsnap/")


@pytest.mark.parametrize("status", [200, 401])
@pytest.mark.parametrize("code", [67200003, 67200009])
def test_token_error_refreshes_once_and_repeats(scripted: ScriptedServer, code: int, status: int) -> None:
    scripted.scripts[PATH] = [error(code, status), ok([{"pn": "CN1"}])]
    scripted.scripts["/oauth/token"] = [
        Reply(200, {"token": "tok-1", "expires_in": 1799}),
        Reply(200, {"token": "tok-2", "expires_in": 1799}),
    ]
    assert PatsnapHook().call("GET", PATH) == [{"pn": "CN1"}]
    bearers = [seen.headers["Authorization"] for seen in scripted.business(PATH)]
    assert bearers == ["Bearer tok-1", "Bearer tok-2"]


def test_token_error_twice_fails_without_a_third_try(scripted: ScriptedServer) -> None:
    scripted.scripts[PATH] = [error(67200003, 401)]
    with pytest.raises(PatsnapAuthError, match="67200003"):
        PatsnapHook().call("GET", PATH)
    assert len(scripted.business(PATH)) == 2
    assert len(scripted.business("/oauth/token")) == 2


def test_token_is_refreshed_before_it_expires(scripted: ScriptedServer) -> None:
    scripted.scripts[PATH] = [ok([])]
    scripted.token_reply(token="short", expires_in="2")  # a string, as some deployments send
    hook = PatsnapHook()
    hook.call("GET", PATH)
    hook.call("GET", PATH)
    assert len(scripted.business("/oauth/token")) == 1
    time.sleep(1.1)  # past ttl/2: the refresh margin for a short-lived token
    hook.call("GET", PATH)
    assert len(scripted.business("/oauth/token")) == 2


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"token": "a", "expires_in": 1799, "status": "approved"}, ("a", 1799.0)),
        ({"access_token": "b", "expires_in": "600"}, ("b", 600.0)),
        ({"data": {"token": "c"}}, ("c", 1800.0)),
    ],
)
def test_token_response_shapes(body: dict, expected: tuple[str, float]) -> None:
    assert parse_token_response(body) == expected


def test_bad_client_secret_is_an_auth_error_without_retry(scripted: ScriptedServer) -> None:
    scripted.scripts["/oauth/token"] = [error(67200003, 401)]
    with pytest.raises(PatsnapAuthError, match="client id and secret"):
        PatsnapHook().call("GET", PATH)
    assert len(scripted.business("/oauth/token")) == 1
    assert scripted.business(PATH) == []


@pytest.mark.parametrize(
    "failure",
    [
        error(67200002, 200),
        error(67200100, 200),
        error(68300008, 500),
        Reply(500, b"<html>Internal Server Error</html>"),
        Reply(502, b"<html>Bad Gateway</html>"),
        Reply(429, b""),
        Reply(200, None),  # connection dropped with no response
    ],
    ids=["qps", "busy", "service", "http500", "http502", "http429", "dropped"],
)
def test_transient_failure_is_retried_then_succeeds(scripted: ScriptedServer, failure: Reply) -> None:
    scripted.scripts[PATH] = [failure, failure, ok([{"pn": "CN1"}])]
    hook = PatsnapHook()
    assert hook.call("GET", PATH) == [{"pn": "CN1"}]
    assert len(scripted.business(PATH)) == 3
    assert hook.stats.retries == 2


def test_transient_failure_gives_up_after_max_retries(scripted: ScriptedServer) -> None:
    scripted.scripts[PATH] = [error(67200100, 503)]
    with pytest.raises(PatsnapTransientError, match="67200100"):
        PatsnapHook().call("GET", PATH)
    assert len(scripted.business(PATH)) == 4  # max_retries=3 in the fixture's connection


@pytest.mark.parametrize(
    "code, status, cls",
    [
        (67200005, 200, PatsnapQuotaError),
        (67200007, 403, PatsnapQuotaError),
        (67200004, 403, PatsnapPermissionError),
        (68300004, 200, PatsnapInvalidInputError),
        (68300007, 400, PatsnapInvalidInputError),
    ],
)
def test_fail_fast_errors_are_not_retried(
    scripted: ScriptedServer, code: int, status: int, cls: type
) -> None:
    scripted.scripts[PATH] = [error(code, status), ok([])]
    with pytest.raises(cls) as raised:
        PatsnapHook().call("GET", PATH, params={"patent_number": "CN1,CN2"})
    assert raised.value.error_code == code
    assert raised.value.http_status == status
    assert f"vendor says {code}" in str(raised.value)
    assert isinstance(raised.value, AirflowFailException)  # Airflow must not retry the task either
    assert len(scripted.business(PATH)) == 1


def test_transient_errors_leave_task_retries_to_airflow(scripted: ScriptedServer) -> None:
    scripted.scripts[PATH] = [error(67200100, 503)]
    with pytest.raises(PatsnapTransientError) as raised:
        PatsnapHook().call("GET", PATH)
    assert not isinstance(raised.value, AirflowFailException)


def test_unknown_code_on_a_5xx_is_still_transient(scripted: ScriptedServer) -> None:
    scripted.scripts[PATH] = [error(99999999, 503), ok([])]
    assert PatsnapHook().call("GET", PATH) == []
    assert len(scripted.business(PATH)) == 2


def test_bare_401_without_a_code_refreshes_the_token_once(scripted: ScriptedServer) -> None:
    scripted.scripts[PATH] = [Reply(401, b"Unauthorized"), ok([])]
    scripted.scripts["/oauth/token"] = [
        Reply(200, {"token": "tok-1", "expires_in": 1799}),
        Reply(200, {"token": "tok-2", "expires_in": 1799}),
    ]
    assert PatsnapHook().call("GET", PATH) == []
    assert [seen.headers["Authorization"] for seen in scripted.business(PATH)] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]


@pytest.mark.parametrize("data", [{"pn": "CN1"}, ["CN1"], "oops"])
def test_data_of_an_unexpected_shape_fails_instead_of_looking_missing(
    scripted: ScriptedServer, data: object
) -> None:
    scripted.scripts[PATH] = [ok(data)]
    with pytest.raises(PatsnapError, match="unexpected shape"):
        PatsnapHook().fetch_batch(AWARD, ["CN1"], "patent_number")


def test_a_pause_holds_every_caller_of_the_rate_limiter() -> None:
    limiter = RateLimiter(qps=1000)
    limiter.pause(0.3)
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.29


def test_rate_limit_answer_pauses_the_shared_limiter(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hook_module, "MAX_RETRY_WAIT", 60.0)
    scripted.scripts[PATH] = [error(67200002, 429, **{"Retry-After": "1"}), ok([])]
    hook = PatsnapHook(qps=1000)
    told_too_fast = threading.Thread(target=hook.call, args=("GET", PATH))
    told_too_fast.start()
    while not scripted.business(PATH):
        time.sleep(0.01)
    time.sleep(0.2)  # that thread now sleeps on Retry-After
    hook.transport.rate_limiter.acquire()  # another thread's next call must wait for the pause too
    released = time.monotonic()
    told_too_fast.join()
    assert released - scripted.business(PATH)[0].at >= 0.9


def test_report_status_as_a_float_is_read_as_an_int(scripted: ScriptedServer) -> None:
    path = "/patent-valuation-data/patent-report/job_id/status"
    scripted.scripts[path] = [
        Reply(
            200,
            b'{"data": {"job_id": 1579434053399036123, "job_status": 2.0, "download_url": "https://x/r.pdf"},'
            b' "status": true}',
        )
    ]
    status = PatsnapHook().get_report_status("1579434053399036123")
    assert status["job_status"] == 2 and status["job_id"] == "1579434053399036123"


def test_token_endpoint_message_is_scrubbed(scripted: ScriptedServer) -> None:
    scripted.scripts["/oauth/token"] = [
        Reply(200, {"status": False, "error_code": 67200003, "error_msg": "bad secret scripted-secret"})
    ]
    with pytest.raises(PatsnapAuthError) as raised:
        PatsnapHook().call("GET", PATH)
    assert "scripted-secret" not in str(raised.value)
    assert raised.value.__context__ is None and raised.value.__cause__ is None


def test_invalid_input_error_names_the_batch(scripted: ScriptedServer) -> None:
    scripted.scripts[PATH] = [error(68300004, 400)]
    with pytest.raises(PatsnapInvalidInputError, match="starting 'CN-BAD-1'"):
        PatsnapHook().fetch_batch(AWARD, ["CN-BAD-1", "CN2"], "patent_number")


def test_retry_after_is_honoured(scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hook_module, "MAX_RETRY_WAIT", 60.0)
    scripted.scripts[PATH] = [Reply(429, b"", {"Retry-After": "1"}), ok([])]
    PatsnapHook().call("GET", PATH)
    first, second = scripted.business(PATH)
    assert second.at - first.at >= 1.0


def test_create_report_is_not_repeated_after_an_ambiguous_failure(scripted: ScriptedServer) -> None:
    path = "/patent-valuation-data/patent-report/task/create-no-logo"
    scripted.scripts[path] = [Reply(502, b"bad gateway"), Reply(201, {"data": {"job_id": 1}, "status": True})]
    with pytest.raises(PatsnapTransientError):
        PatsnapHook().create_value_report(patent_number="CN1", report_type="pdf")
    assert len(scripted.business(path)) == 1


def test_create_report_is_repeated_after_a_rate_limit_answer(scripted: ScriptedServer) -> None:
    path = "/patent-valuation-data/patent-report/task/create-no-logo"
    job = b'{"data": {"job_id": 1579434053399036123}, "status": true, "error_code": 0}'
    scripted.scripts[path] = [error(67200002, 429), Reply(201, job)]
    assert PatsnapHook().create_value_report(patent_number="CN1", report_type="pdf") == "1579434053399036123"
    assert json.loads(scripted.business(path)[1].body) == {"patent_number": "CN1", "report_type": "pdf"}


def test_sk_api_key_skips_the_token_step(scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        json.dumps({"conn_type": "patsnap", "host": scripted.base_url, "password": "sk-live-key"}),
    )
    scripted.scripts[PATH] = [error(67200003, 401), ok([])]
    with pytest.raises(PatsnapAuthError):
        PatsnapHook().call("GET", PATH)
    assert scripted.business("/oauth/token") == []
    seen = scripted.business(PATH)
    assert len(seen) == 1  # no token to refresh: a bad key fails at once
    assert seen[0].headers["Authorization"] == "Bearer sk-live-key"
    assert seen[0].query["apikey"] == "sk-live-key"


def test_connection_without_credentials_is_rejected_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({"conn_type": "patsnap", "login": "id"}))
    with pytest.raises(PatsnapInputError, match="client secret"):
        PatsnapHook().settings  # noqa: B018


def test_bad_extra_names_the_value(scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "patsnap", "host": scripted.base_url, "login": "a", "password": "b"}
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": {"qps": "fast"}}))
    with pytest.raises(ValueError, match="'qps' must be a number, got 'fast'"):
        PatsnapHook().settings  # noqa: B018


def test_no_secret_in_logs_or_errors(scripted: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    scripted.token_reply(token="tok-secret-value")
    scripted.scripts[PATH] = [Reply(200, None), error(67200100, 503)]
    with pytest.raises(PatsnapTransientError) as raised:
        PatsnapHook().call("GET", PATH, params={"patent_number": "CN1"})
    texts = [caplog.text, str(raised.value), repr(raised.value), str(raised.value.__cause__)]
    for secret in ("scripted-secret", "tok-secret-value", "scripted-client"):
        assert not any(secret in text for text in texts), secret
    assert "apikey=***" in caplog.text  # urllib3's request lines were seen, and scrubbed


@pytest.mark.parametrize("qps, expected", [(0, 64), (0.1, 2), (5, 50), (6.4, 64), (10, 64)])
def test_default_concurrency_covers_the_vendors_worst_latency(qps: float, expected: int) -> None:
    assert default_concurrency(qps) == expected


def test_concurrency_extra_overrides_the_default(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "patsnap", "host": scripted.base_url, "login": "a", "password": "b"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": {"qps": 5, "concurrency": 7}})
    )
    assert PatsnapHook().settings.concurrency == 7
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": {"qps": 5}}))
    assert PatsnapHook().settings.concurrency == 50
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": {"concurrency": -1}}))
    with pytest.raises(PatsnapInputError, match="'concurrency' must be >= 1"):
        PatsnapHook().settings  # noqa: B018


def test_no_api_key_in_logs_or_errors(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        json.dumps({"conn_type": "patsnap", "host": scripted.base_url, "password": "sk-very-secret-key"}),
    )
    scripted.scripts[PATH] = [Reply(200, None), error(67200100, 503)]
    with pytest.raises(PatsnapTransientError) as raised:
        PatsnapHook().call("GET", PATH, params={"patent_number": "CN1"})
    assert scripted.business(PATH)[0].query["apikey"] == "sk-very-secret-key"  # it was really sent
    for text in (caplog.text, str(raised.value), repr(raised.value)):
        assert "sk-very-secret-key" not in text
