"""PatsnapHook's wire logic without sockets or sleeps: auth, envelope, typed errors, retries, limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import requests_mock

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
from airflow_provider_patsnap.hooks._shared import RateLimiter
from airflow_provider_patsnap.hooks._transport import parse_token_response
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.report import CREATE_PATH, STATUS_PATH, ReportStatus
from tests.helpers import BASE_URL, TOKEN_URL, FakeClock

PATH = AWARD.path
URL = f"{BASE_URL}{PATH}"


def ok(data: Any, status: int = 200) -> dict[str, Any]:
    return {"status_code": status, "json": {"data": data, "status": True, "error_code": 0}}


def error(code: int, status: int = 200, **headers: str) -> dict[str, Any]:
    body = {"status": False, "error_code": code, "error_msg": f"vendor says {code}"}
    return {"status_code": status, "json": body, "headers": headers}


def raw(status: int, content: bytes, **headers: str) -> dict[str, Any]:
    return {"status_code": status, "content": content, "headers": headers}


def calls(vendor: requests_mock.Mocker, url: str = URL) -> list[Any]:
    return [seen for seen in vendor.request_history if seen.url.split("?")[0] == url]


def tokens(vendor: requests_mock.Mocker) -> list[Any]:
    return calls(vendor, TOKEN_URL)


def test_one_token_serves_many_calls_and_both_credentials_are_sent(vendor: requests_mock.Mocker) -> None:
    vendor.get(URL, [ok([])])
    hook = PatsnapHook()
    for _ in range(5):
        assert hook.call("GET", PATH, params={"patent_number": "CN1"}) == []
    [token_request] = tokens(vendor)
    assert token_request.method == "POST"
    assert token_request.body == "grant_type=client_credentials"
    assert token_request.headers["Authorization"].startswith("Basic ")
    for seen in calls(vendor):
        assert seen.qs["apikey"] == ["unit-client"]
        assert seen.headers["Authorization"] == "Bearer tok-1"
        assert seen.headers["User-Agent"].startswith("airflow-provider-patsnap/")


@pytest.mark.parametrize("status", [200, 401])
@pytest.mark.parametrize("code", [67200003, 67200009])
def test_token_error_refreshes_once_and_repeats(vendor: requests_mock.Mocker, code: int, status: int) -> None:
    vendor.get(URL, [error(code, status), ok([{"pn": "CN1"}])])
    vendor.post(TOKEN_URL, [{"json": {"token": "tok-1", "expires_in": 1799}}, {"json": {"token": "tok-2"}}])
    assert PatsnapHook().call("GET", PATH) == [{"pn": "CN1"}]
    assert [seen.headers["Authorization"] for seen in calls(vendor)] == ["Bearer tok-1", "Bearer tok-2"]


def test_token_error_twice_fails_without_a_third_try(vendor: requests_mock.Mocker) -> None:
    vendor.get(URL, [error(67200003, 401)])
    with pytest.raises(PatsnapAuthError, match="67200003"):
        PatsnapHook().call("GET", PATH)
    assert len(calls(vendor)) == 2
    assert len(tokens(vendor)) == 2


def test_token_is_refreshed_before_it_expires(vendor: requests_mock.Mocker, clock: FakeClock) -> None:
    vendor.get(URL, [ok([])])
    vendor.post(TOKEN_URL, json={"token": "short", "expires_in": "2"})  # a string, as some deployments send
    hook = PatsnapHook()
    hook.call("GET", PATH)
    hook.call("GET", PATH)
    assert len(tokens(vendor)) == 1
    clock.advance(1.1)  # past ttl/2: the refresh margin for a short-lived token
    hook.call("GET", PATH)
    assert len(tokens(vendor)) == 2


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"token": "a", "expires_in": 1799, "status": "approved"}, ("a", 1799.0, None)),
        ({"access_token": "b", "expires_in": "600"}, ("b", 600.0, None)),
        ({"data": {"token": "c"}}, ("c", 1800.0, None)),
        ({"data": {"access_token": "c", "expires_in": "1799.5"}}, ("c", 1799.5, None)),
        ({"token": "", "access_token": "e"}, ("e", 1800.0, None)),
        ({"token": "d", "expires_in": "inf"}, ("d", 1800.0, "inf")),
        ({"token": "d", "expires_in": True}, ("d", 1800.0, True)),  # not 1 s: a boolean is no duration
        ({"token": "d", "expires_in": -1799}, ("d", 1800.0, -1799)),
        ({"token": "d", "expires_in": 1799000}, ("d", 1800.0, 1799000)),  # milliseconds, most likely
        ({"token": "d", "expires_in": "30m"}, ("d", 1800.0, "30m")),
        ({"accessToken": "f"}, None),
        ({"token": 12345}, None),
        (["token", "a"], None),
    ],
)
def test_token_response_shapes(body: Any, expected: tuple[str, float, Any] | None) -> None:
    assert parse_token_response(body) == expected


def test_bad_client_secret_is_an_auth_error_without_retry(vendor: requests_mock.Mocker) -> None:
    vendor.post(TOKEN_URL, **error(67200003, 401))
    vendor.get(URL, [ok([])])
    with pytest.raises(PatsnapAuthError, match="client id and secret"):
        PatsnapHook().call("GET", PATH)
    assert len(tokens(vendor)) == 1
    assert calls(vendor) == []


@pytest.mark.parametrize(
    "failure",
    [
        error(67200002, 200),
        error(67200100, 200),
        error(68300008, 500),
        raw(500, b"<html>Internal Server Error</html>"),
        raw(502, b"<html>Bad Gateway</html>"),
        raw(429, b""),
        {"exc": requests.exceptions.ConnectionError("connection dropped")},
        {"exc": requests.exceptions.ChunkedEncodingError("body cut mid-stream")},
    ],
    ids=["qps", "busy", "service", "http500", "http502", "http429", "dropped", "cut-body"],
)
def test_transient_failure_is_retried_then_succeeds(vendor: requests_mock.Mocker, failure: dict) -> None:
    vendor.get(URL, [failure, failure, ok([{"pn": "CN1"}])])
    hook = PatsnapHook()
    assert hook.call("GET", PATH) == [{"pn": "CN1"}]
    assert len(calls(vendor)) == 3
    assert hook.stats.retries == 2


def test_transient_failure_gives_up_after_max_retries(vendor: requests_mock.Mocker, clock: FakeClock) -> None:
    vendor.get(URL, [error(67200100, 503)])
    with pytest.raises(PatsnapTransientError, match="67200100"):
        PatsnapHook().call("GET", PATH)
    assert len(calls(vendor)) == 4  # max_retries=3 in the fixture's connection
    assert len(clock.waits) == 3 and all(0.5 <= wait <= 60 for wait in clock.waits)
    assert clock.waits[2] > clock.waits[0]  # exponential


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
    vendor: requests_mock.Mocker, code: int, status: int, cls: type
) -> None:
    vendor.get(URL, [error(code, status), ok([])])
    with pytest.raises(cls) as raised:
        PatsnapHook().call("GET", PATH, params={"patent_number": "CN1,CN2"})
    assert raised.value.error_code == code
    assert raised.value.http_status == status
    assert f"vendor says {code}" in str(raised.value)
    assert isinstance(raised.value, AirflowFailException)  # Airflow must not retry the task either
    assert len(calls(vendor)) == 1


def test_transient_errors_leave_task_retries_to_airflow(vendor: requests_mock.Mocker) -> None:
    vendor.get(URL, [error(67200100, 503)])
    with pytest.raises(PatsnapTransientError) as raised:
        PatsnapHook().call("GET", PATH)
    assert not isinstance(raised.value, AirflowFailException)


def test_unknown_code_on_a_5xx_is_still_transient(vendor: requests_mock.Mocker) -> None:
    vendor.get(URL, [error(99999999, 503), ok([])])
    assert PatsnapHook().call("GET", PATH) == []
    assert len(calls(vendor)) == 2


def test_bare_401_without_a_code_refreshes_the_token_once(vendor: requests_mock.Mocker) -> None:
    vendor.get(URL, [raw(401, b"Unauthorized"), ok([])])
    vendor.post(TOKEN_URL, [{"json": {"token": "tok-1"}}, {"json": {"token": "tok-2"}}])
    assert PatsnapHook().call("GET", PATH) == []
    assert [seen.headers["Authorization"] for seen in calls(vendor)] == ["Bearer tok-1", "Bearer tok-2"]


@pytest.mark.parametrize("data", [{"pn": "CN1"}, ["CN1"], "oops"])
def test_data_of_an_unexpected_shape_fails_instead_of_looking_missing(
    vendor: requests_mock.Mocker, data: object
) -> None:
    vendor.get(URL, [ok(data)])
    with pytest.raises(PatsnapError, match="unexpected shape"):
        PatsnapHook().fetch_batch(AWARD, ["CN1"], "patent_number")


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"\xef\xbb\xbf" + json.dumps({"data": [], "status": True}).encode(), None),
        (b"[1, 2]", "JSON that is not an envelope (a list)"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply to read"),
        (b"\xff\xfe", "a body that is not UTF-8"),
        (b"<html>", "a body that is not JSON"),
    ],
    ids=["bom", "array", "deep", "not-utf8", "html"],
)
def test_bodies_are_read_strictly(vendor: requests_mock.Mocker, content: bytes, problem: str | None) -> None:
    vendor.get(URL, [raw(200, content)])
    if problem is None:
        assert PatsnapHook().call("GET", PATH) == []
        return
    with pytest.raises(PatsnapError) as raised:
        PatsnapHook().call("GET", PATH)
    assert problem in str(raised.value)


def test_a_pause_holds_every_caller_of_the_rate_limiter(clock: FakeClock) -> None:
    limiter = RateLimiter(qps=1000)
    limiter.pause(0.3)
    assert limiter.reserve() == pytest.approx(0.3)
    assert limiter.reserve() == pytest.approx(0.301)  # the next caller is spaced after it


def test_rate_limit_answer_pauses_the_shared_limiter(vendor: requests_mock.Mocker, clock: FakeClock) -> None:
    vendor.get(URL, [error(67200002, 429, **{"Retry-After": "1"}), ok([])])
    hook = PatsnapHook(qps=1000)
    answered_at = clock.monotonic()
    hook.call("GET", PATH)
    assert clock.waits[0] == 1.0  # Retry-After, honoured
    # The limiter was paused for every caller: the next slot is after the Retry-After window.
    assert answered_at + 1.0 <= clock.monotonic() + hook.transport.rate_limiter.reserve()


def test_retry_after_is_honoured_and_capped(vendor: requests_mock.Mocker, clock: FakeClock) -> None:
    vendor.get(URL, [raw(429, b"", **{"Retry-After": "1"}), raw(429, b"", **{"Retry-After": "3600"}), ok([])])
    PatsnapHook().call("GET", PATH)
    assert clock.waits[:2] == [1.0, 60.0]


def test_report_status_as_a_float_is_read_as_an_int(vendor: requests_mock.Mocker) -> None:
    data = {
        "job_id": 1579434053399036123,
        "job_status": float(ReportStatus.DONE),  # a float on the wire
        "download_url": "https://x/r.pdf",
    }
    body = json.dumps({"data": data, "status": True}).encode()
    vendor.get(f"{BASE_URL}{STATUS_PATH}", content=body)
    status = PatsnapHook().get_report_status("1579434053399036123")
    assert status["job_status"] == ReportStatus.DONE and status["job_id"] == "1579434053399036123"


def test_token_endpoint_message_is_scrubbed(vendor: requests_mock.Mocker) -> None:
    vendor.post(
        TOKEN_URL, json={"status": False, "error_code": 67200003, "error_msg": "bad secret unit-secret"}
    )
    with pytest.raises(PatsnapAuthError) as raised:
        PatsnapHook().call("GET", PATH)
    assert "unit-secret" not in str(raised.value)
    assert raised.value.__context__ is None and raised.value.__cause__ is None


def test_invalid_input_error_names_the_batch(vendor: requests_mock.Mocker) -> None:
    vendor.get(URL, [error(68300004, 400)])
    with pytest.raises(PatsnapInvalidInputError, match="starting 'CN-BAD-1'"):
        PatsnapHook().fetch_batch(AWARD, ["CN-BAD-1", "CN2"], "patent_number")


def test_create_report_is_not_repeated_after_an_ambiguous_failure(vendor: requests_mock.Mocker) -> None:
    url = f"{BASE_URL}{CREATE_PATH}"
    vendor.post(
        url, [raw(502, b"bad gateway"), {"status_code": 201, "json": {"data": {"job_id": 1}, "status": True}}]
    )
    with pytest.raises(PatsnapTransientError):
        PatsnapHook().create_value_report(patent_number="CN1", report_type="pdf")
    assert len(calls(vendor, url)) == 1


def test_create_report_is_repeated_after_a_rate_limit_answer(vendor: requests_mock.Mocker) -> None:
    url = f"{BASE_URL}{CREATE_PATH}"
    job = b'{"data": {"job_id": 1579434053399036123}, "status": true, "error_code": 0}'
    vendor.post(url, [error(67200002, 429), {"status_code": 201, "content": job}])
    assert PatsnapHook().create_value_report(patent_number="CN1", report_type="pdf") == "1579434053399036123"
    assert json.loads(calls(vendor, url)[1].body) == {"patent_number": "CN1", "report_type": "pdf"}


def test_sk_api_key_skips_the_token_step(
    vendor: requests_mock.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        json.dumps({"conn_type": "patsnap", "host": BASE_URL, "password": "sk-live-key"}),
    )
    vendor.get(URL, [error(67200003, 401), ok([])])
    with pytest.raises(PatsnapAuthError):
        PatsnapHook().call("GET", PATH)
    assert tokens(vendor) == []
    [seen] = calls(vendor)  # no token to refresh: a bad key fails at once
    assert seen.headers["Authorization"] == "Bearer sk-live-key"
    assert seen.qs["apikey"] == ["sk-live-key"]


def test_connection_without_credentials_is_rejected_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({"conn_type": "patsnap", "login": "id"}))
    with pytest.raises(PatsnapInputError, match="client secret"):
        PatsnapHook().settings  # noqa: B018


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"qps": "fast"}, "'qps' must be a number, got 'fast'"),
        ({"qps": "nan"}, "'qps' must be finite, got 'nan'"),
        ({"timeout": "inf"}, "'timeout' must be finite, got 'inf'"),
        ({"max_retries": 2.5}, "'max_retries' must be a whole number, got 2.5"),
        ({"concurrency": 100_000}, "'concurrency' must be >= 1 and <= 4096, got 100000"),
        ({"proxies": ["http://proxy:3128"]}, "'proxies' must be a JSON object"),
        ({"proxies": "not json"}, "'proxies' is not JSON"),
        ({"verify": "maybe"}, "'verify' must be true or false, got 'maybe'"),
    ],
)
def test_bad_extra_names_the_value(monkeypatch: pytest.MonkeyPatch, extra: dict, message: str) -> None:
    conn = {"conn_type": "patsnap", "host": BASE_URL, "login": "a", "password": "b"}
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": extra}))
    with pytest.raises(PatsnapInputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        PatsnapHook().settings  # noqa: B018


def test_a_masked_placeholder_is_not_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow 3's UI saves ``***`` in a field it considers sensitive: it means "not set"."""
    conn = {"conn_type": "patsnap", "host": BASE_URL, "login": "a", "password": "b"}
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": {"proxies": "***"}}))
    assert PatsnapHook().settings.proxies is None


def test_settings_repr_shows_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "patsnap", "host": BASE_URL, "login": "the-client", "password": "the-secret"}
    proxies = {"https": "http://user:proxy-pass@proxy:3128"}
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": {"proxies": proxies}}))
    text = repr(PatsnapHook().settings)
    assert BASE_URL in text
    for secret in ("the-client", "the-secret", "proxy-pass"):
        assert secret not in text


@pytest.mark.parametrize(
    "qps, expected",
    [(0, 64), (0.1, 2), (5, 60), (6.4, 77), (10, 120), (50, 600), (100, 1200), (341, 4092), (1000, 4096)],
)
def test_default_concurrency_covers_the_vendors_worst_latency(qps: float, expected: int) -> None:
    """qps x 10 s x 1.2 headroom, no cap below 4096: at QPS 50, 64 in flight would carry 6.4 calls/s."""
    assert default_concurrency(qps) == expected


def test_concurrency_extra_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "patsnap", "host": BASE_URL, "login": "a", "password": "b"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": {"qps": 5, "concurrency": 7}})
    )
    assert PatsnapHook().settings.concurrency == 7
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": {"qps": 5}}))
    assert PatsnapHook().settings.concurrency == 60
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps({**conn, "extra": {"concurrency": -1}}))
    with pytest.raises(PatsnapInputError, match="'concurrency' must be >= 1"):
        PatsnapHook().settings  # noqa: B018


def test_settings_repr_shows_the_base_url_without_its_user_info(monkeypatch: pytest.MonkeyPatch) -> None:
    host = "https://gateway-user:url-pass@patsnap.test"
    conn = {"conn_type": "patsnap", "host": host, "login": "the-client", "password": "the-secret"}
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", json.dumps(conn))
    settings = PatsnapHook().settings
    assert repr(settings).startswith("ConnectionSettings(base_url='https://patsnap.test', qps=5.0")
    assert "url-pass" in settings.secrets and "gateway-user" not in repr(settings)
