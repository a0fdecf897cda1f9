"""PatsnapHook.lookup's pipeline: rate-limit slots taken before a worker, bounded results, stopping."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import pytest
import requests
import requests_mock

from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.exceptions import PatsnapCancelledError
from airflow_provider_patsnap.hooks import _pipeline
from airflow_provider_patsnap.hooks._shared import RateLimiter
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
