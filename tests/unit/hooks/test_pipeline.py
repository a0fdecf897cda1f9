"""PatsnapHook.lookup's pipeline: rate-limit slots taken before a worker, bounded results, stopping."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import requests_mock

from airflow_provider_patsnap.connection import parse_connection
from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.exceptions import PatsnapCancelledError
from airflow_provider_patsnap.hooks import _pipeline
from airflow_provider_patsnap.hooks._redis_limiter import RedisRateLimiter
from airflow_provider_patsnap.hooks._shared import Cancellation, RateLimiter
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from tests.helpers import BASE_URL, TOKEN_URL, FakeClock

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


def test_the_token_comes_before_the_first_slot(
    vendor: requests_mock.Mocker, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls whose slots came while the token was being fetched would all leave together once it came."""
    vendor.get(URL, json=answer)
    tokens_at_each_slot: list[int] = []
    reserve = RateLimiter.reserve

    def recording_reserve(self: RateLimiter) -> float:
        tokens_at_each_slot.append(
            sum(request.url.startswith(TOKEN_URL) for request in vendor.request_history)
        )
        return reserve(self)

    monkeypatch.setattr(RateLimiter, "reserve", recording_reserve)
    list(PatsnapHook(qps=10, concurrency=4).lookup(AWARD, ids(300)))
    assert tokens_at_each_slot == [1, 1, 1]


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


class LateWaker(FakeClock):
    """A fake clock whose first ``late_waits`` waits end ``lateness`` seconds after they were due: a
    machine too busy to run the dispatcher when its slot came."""

    def __init__(self, late_waits: int, lateness: float) -> None:
        super().__init__()
        self.late_waits, self.lateness = late_waits, lateness

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if self.late_waits > 0:
            self.late_waits -= 1
            self.advance(self.lateness)
        return super().wait(event, seconds)


def paced(clock: FakeClock, late_slot: float | None, batches: int = 2) -> tuple[list[list[int]], int]:
    """Run ``paced_map`` over single-id batches, each slot 0.5 s away; return what it yielded and how
    many slots it took."""
    taken = 0

    def reserve() -> float:
        nonlocal taken
        taken += 1
        return 0.5

    def stopped(stop: _pipeline.PipelineStopped) -> None:
        raise stop.error

    results = list(
        _pipeline.paced_map(
            iter([[number] for number in range(batches)]),
            lambda batch: batch,
            concurrency=1,
            reserve_slot=reserve,
            clock=clock,
            cancellation=Cancellation(clock),
            name="test-",
            on_stop=stopped,
            late_slot=late_slot,
        )
    )
    return results, taken


def test_a_slot_woken_for_too_late_is_left_and_the_batch_takes_a_new_one() -> None:
    results, taken = paced(LateWaker(late_waits=1, lateness=0.3), late_slot=0.1)
    assert sorted(batch for group in results for batch in group) == [[0], [1]]
    assert taken == 3  # the first batch's late slot, its new one, the second batch's


def test_a_slot_woken_for_a_little_late_is_used() -> None:
    _, taken = paced(LateWaker(late_waits=1, lateness=0.05), late_slot=0.1)
    assert taken == 2


def test_without_a_late_limit_every_slot_is_used_however_late() -> None:
    _, taken = paced(LateWaker(late_waits=5, lateness=10.0), late_slot=None)
    assert taken == 2


def test_a_batch_that_wakes_late_for_every_slot_still_goes_after_a_few() -> None:
    results, taken = paced(LateWaker(late_waits=1000, lateness=1.0), late_slot=0.1, batches=1)
    assert results == [[[0]]]
    assert taken == _pipeline.LATE_SLOT_RETAKES + 1


def test_only_the_shared_schedule_leaves_late_slots() -> None:
    settings = parse_connection(
        SimpleNamespace(
            conn_id="patsnap_x",
            host="https://patsnap.test",
            port=None,
            login="client",
            password="secret",
            extra_dejson={"qps": 20, "rate_limit_redis_conn_id": "patsnap_redis"},
        )
    )
    shared = RedisRateLimiter(object(), settings, FakeClock())  # no Redis is asked until a slot is taken
    assert shared.late_slot == pytest.approx(0.1)  # two spacings at qps 20
    assert RateLimiter(20).late_slot is None
