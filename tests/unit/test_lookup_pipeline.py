"""PatsnapHook.lookup's pipeline: rate-limit slots taken before a worker, bounded results, stopping."""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
import requests_mock

from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.exceptions import PatsnapCancelledError
from airflow_provider_patsnap.hooks import _pipeline
from airflow_provider_patsnap.hooks._shared import RateLimiter
from airflow_provider_patsnap.hooks._transport import query_string
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from tests.helpers import BASE_URL, FakeClock

URL = f"{BASE_URL}{AWARD.path}"


def ids(count: int) -> list[str]:
    return [f"CN{100000000 + i}A" for i in range(count)]


def answer(request: Any, context: Any) -> dict[str, Any]:
    """Every requested number comes back."""
    numbers = request.qs["patent_number"][0].upper().split(",")
    return {"status": True, "error_code": 0, "data": [{"pn": number} for number in numbers]}


@pytest.fixture
def slot_takers(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Which threads take rate-limit slots: the dispatcher, or workers."""
    takers: Counter[str] = Counter()
    reserve = RateLimiter.reserve

    def recording_reserve(self: RateLimiter) -> float:
        name = threading.current_thread().name
        takers["dispatcher" if name.endswith("dispatch") else "worker"] += 1
        return reserve(self)

    monkeypatch.setattr(RateLimiter, "reserve", recording_reserve)
    return takers


def test_workers_never_wait_in_the_rate_limiter(
    vendor: requests_mock.Mocker, clock: FakeClock, slot_takers: Counter[str]
) -> None:
    vendor.get(URL, json=answer)
    results = list(PatsnapHook(qps=10, concurrency=4).lookup(AWARD, ids(1000)))
    assert sum(len(result.patents) for result in results) == 1000
    assert slot_takers == {"dispatcher": 10}
    assert sum(clock.waits) == pytest.approx(0.9)  # 10 calls spaced 1/qps apart: 9 intervals


def test_a_retry_takes_its_own_slot_in_its_worker(
    vendor: requests_mock.Mocker, clock: FakeClock, slot_takers: Counter[str]
) -> None:
    vendor.get(URL, [{"status_code": 502, "text": "bad gateway"}, {"json": answer}])
    results = list(PatsnapHook(qps=10, concurrency=1).lookup(AWARD, ids(300)))
    assert sum(len(result.patents) for result in results) == 300
    assert vendor.call_count == 1 + 4  # the token, then 3 batches and one retry
    assert slot_takers == {"dispatcher": 3, "worker": 1}


def test_a_slow_consumer_bounds_the_calls_made_ahead_of_it(vendor: requests_mock.Mocker) -> None:
    vendor.get(URL, json=answer)
    concurrency = 4
    lookup = PatsnapHook(concurrency=concurrency).lookup(AWARD, ids(100_000))
    next(lookup)
    lookup.close()  # waits for the calls in flight
    business_calls = vendor.call_count - 1
    assert business_calls <= 1 + _pipeline.RESULT_BUFFER + concurrency  # not 1,000


def test_cancel_stops_dispatching_and_says_what_was_not_fetched(vendor: requests_mock.Mocker) -> None:
    cancelled = threading.Event()
    calls = 0

    def answer_once_cancelled(request: Any, context: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls > 1:  # a call in flight when the cancel comes: it ends after it, and is delivered
            cancelled.wait()
        return answer(request, context)

    vendor.get(URL, json=answer_once_cancelled)
    hook = PatsnapHook(qps=10, concurrency=1)
    delivered = 0
    with pytest.raises(PatsnapCancelledError) as raised:
        for result in hook.lookup(AWARD, ids(5000)):
            delivered += len(result.requested)
            hook.cancel()
            cancelled.set()
    assert delivered in (100, 200)  # the second batch, if it was already on its way, still lands
    assert calls == delivered // 100
    assert f"{5000 - delivered} of 5000 id(s) were not fetched" in "".join(raised.value.__notes__)


def test_a_concurrency_that_cannot_carry_the_qps_is_logged_with_the_rate_it_allows(
    vendor: requests_mock.Mocker, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    def warnings() -> list[str]:
        # Airflow 3 logs through structlog to stdout, Airflow 2 through logging
        text = caplog.text + capsys.readouterr().out
        caplog.clear()
        return [line for line in text.splitlines() if "concurrency=" in line]

    vendor.get(URL, json=answer)
    caplog.set_level(logging.WARNING)
    list(PatsnapHook(qps=50, concurrency=64).lookup(AWARD, ids(10)))
    warning = "\n".join(warnings())
    assert "concurrency=64 allows at most 6.4 calls/s (640 patents/s)" in warning
    assert "below qps=50" in warning and "to 600" in warning
    list(PatsnapHook(qps=50).lookup(AWARD, ids(10)))
    assert warnings() == []


def test_the_batch_url_is_what_requests_would_build(vendor: requests_mock.Mocker) -> None:
    """The apikey rides with the other parameters (one URL encoding, not two): same bytes on the wire."""
    vendor.get(URL, json=answer)
    numbers = ids(100)
    list(PatsnapHook().lookup(AWARD, numbers))
    (sent,) = [request for request in vendor.request_history if request.method == "GET"]
    expected = requests.Request(
        "GET", URL, params={"patent_number": ",".join(numbers), "apikey": "unit-client"}
    ).prepare()
    assert sent.url == expected.url


def test_the_environment_is_read_once_per_host_with_requests_own_result(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "bypassed.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bundle.pem")
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT", '{"conn_type": "patsnap", "login": "a", "password": "b"}'
    )
    session = PatsnapHook().transport.session
    plain = requests.Session()
    for url in ("https://patsnap.test/a?x=1", "https://bypassed.test/b", "http://patsnap.test/c"):
        ours = session.merge_environment_settings(url, {}, None, None, None)
        assert ours == plain.merge_environment_settings(url, {}, None, None, None)
        ours["proxies"]["https"] = "changed by a caller"
    monkeypatch.setenv("HTTPS_PROXY", "http://other.test:3128")  # read once: a task's environment is fixed
    again = session.merge_environment_settings("https://patsnap.test/d", {}, None, None, None)
    assert again["proxies"]["https"] == "http://proxy.test:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    for verify, proxies in ((False, {}), ("/ca.pem", {}), (True, {"https": "http://mine.test:8080"})):
        ours = session.merge_environment_settings("https://patsnap.test/e", proxies, None, verify, None)
        assert ours == plain.merge_environment_settings("https://patsnap.test/e", proxies, None, verify, None)


def test_refusals_for_going_too_fast_widen_the_spacing_and_passing_calls_narrow_it(clock: FakeClock) -> None:
    limiter = RateLimiter(qps=10)

    def spacing() -> float:
        limiter.reserve()
        return limiter.reserve()  # fake time stands still: the second waits one spacing more

    assert spacing() == pytest.approx(0.1)
    limiter.slow_down()
    assert limiter.interval == pytest.approx(0.15)
    for _ in range(10):
        limiter.slow_down()
    assert limiter.interval == pytest.approx(0.4)  # at most 4 x 1/qps
    for _ in range(200):
        limiter.speed_up()
    assert limiter.interval == pytest.approx(0.1)  # back to qps, never faster
    unlimited = RateLimiter(qps=0)
    unlimited.slow_down()
    assert unlimited.reserve() == 0.0


def test_a_rate_limit_answer_slows_the_shared_limiter(vendor: requests_mock.Mocker, clock: FakeClock) -> None:
    vendor.get(
        URL, [{"status_code": 429, "json": {"status": False, "error_code": 67200002}}, {"json": answer}]
    )
    hook = PatsnapHook(qps=10)
    list(hook.lookup(AWARD, ids(100)))
    assert hook.transport.rate_limiter.interval == pytest.approx(0.15 * 0.98)  # widened, then one pass


def test_the_batch_query_is_what_urlencode_makes_of_any_text() -> None:
    """Batches are sent without requests' own preparation: their query is still urlencode's, byte for
    byte, whatever the characters."""
    rng = random.Random(3)
    alphabet = "aZ09,-_.~!#$%&'()*+/:;=?@[]^`{|}\\ é专\t"

    def text(longest: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, longest)))

    for _ in range(3000):
        params = {text(5): text(30) for _ in range(rng.randint(1, 3))}
        assert query_string(params) == urlencode(params, doseq=True), params


def test_a_batch_is_prepared_as_requests_prepares_it(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same URL, headers (the session's, a cookie the vendor set, the bearer token) and body."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT", '{"conn_type": "patsnap", "password": "sk-unit-key-0123456789"}'
    )
    transport = PatsnapHook().transport
    session = transport.session
    session.cookies.set("lb", "node-2", domain="connect.patsnap.com", path="/")
    params = {"patent_number": ",".join([*ids(3), "CN1/2#A"]), "apikey": "sk-unit-key-0123456789"}
    ours = session.prepare_get(URL.replace(BASE_URL, "https://connect.patsnap.com"), params, transport.auth)
    theirs = session.prepare_request(
        requests.Request(
            "GET", URL.replace(BASE_URL, "https://connect.patsnap.com"), params=params, auth=transport.auth
        )
    )
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    assert dict(ours.headers) == dict(theirs.headers)
    assert ours.headers["Cookie"] == "lb=node-2" and ours.headers["Authorization"].startswith("Bearer sk-")
