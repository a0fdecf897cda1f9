"""The sandbox's state on a clock that only moves when told: no sockets, no sleeps."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from airflow_provider_patsnap.sandbox import state
from airflow_provider_patsnap.sandbox.state import (
    CpuMeter,
    Ledger,
    LostCreateAnswers,
    RequestRecord,
    SandboxClock,
    TokenBucket,
    TokenStore,
)

START_MONOTONIC = 1000.0
START_WALL = 1_700_000_000.0


def frozen_clock() -> SandboxClock:
    """A sandbox clock over real clocks that never tick: only advance() moves it."""
    return SandboxClock(monotonic=lambda: START_MONOTONIC, wall=lambda: START_WALL)


def test_advance_moves_monotonic_and_wall_time_together() -> None:
    clock = frozen_clock()
    assert (clock.now(), clock.wall()) == (START_MONOTONIC, START_WALL)
    clock.advance(90.5)
    clock.advance(0)
    assert (clock.now(), clock.wall()) == (START_MONOTONIC + 90.5, START_WALL + 90.5)


@pytest.mark.parametrize("seconds", [-0.001, math.nan])
def test_the_clock_never_moves_back(seconds: float) -> None:
    clock = frozen_clock()
    with pytest.raises(ValueError, match="forward"):
        clock.advance(seconds)
    assert clock.now() == START_MONOTONIC


def test_the_clock_follows_real_time_plus_the_offset() -> None:
    real = [5.0]
    clock = SandboxClock(monotonic=lambda: real[0], wall=lambda: START_WALL)
    clock.advance(10)
    real[0] = 7.0
    assert clock.now() == 17.0


def test_a_frozen_clock_ignores_real_time_and_moves_only_when_advanced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = SimpleNamespace(monotonic=lambda: 50.75, time=lambda: START_WALL + 0.4)
    monkeypatch.setattr(state, "time", real)
    clock = SandboxClock.frozen()
    real.monotonic, real.time = (lambda: 80.0), (lambda: START_WALL + 30)  # real time went on
    assert (clock.now(), clock.wall()) == (50.0, START_WALL)  # whole seconds: advances add up exactly
    clock.advance(2.5)
    assert (clock.now(), clock.wall()) == (52.5, START_WALL + 2.5)


def test_on_a_frozen_clock_a_token_dies_exactly_at_its_ttl() -> None:
    clock = SandboxClock.frozen()
    store = TokenStore(ttl=1799, clock=clock.now)
    clock.advance(60)
    token = store.issue("client")
    clock.advance(1798)
    assert store.client_for(token) == "client"
    clock.advance(1)
    assert store.client_for(token) is None


def test_token_lives_exactly_its_ttl() -> None:
    clock = frozen_clock()
    store = TokenStore(ttl=60, clock=clock.now)
    token = store.issue("client")
    clock.advance(59.999)
    assert store.client_for(token) == "client"
    clock.advance(0.001)
    assert store.client_for(token) is None


def test_issuing_drops_dead_tokens() -> None:
    clock = frozen_clock()
    store = TokenStore(ttl=60, clock=clock.now)
    store.issue("client")
    clock.advance(60)
    live = store.issue("client")
    assert store.expire_all() == 1  # only the live one was still stored
    assert store.client_for(live) is None


def test_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    clock = frozen_clock()
    bucket = TokenBucket(rate=2, capacity=3, clock=clock.now)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.25)  # half a token
    assert not bucket.take()
    clock.advance(0.25)
    assert bucket.take() and not bucket.take()
    clock.advance(3600)  # a long pause saves up no more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_bucket_capacity_below_one_still_lets_one_call_through() -> None:
    clock = frozen_clock()
    bucket = TokenBucket(rate=0.5, capacity=0.5, clock=clock.now)
    assert bucket.take() and not bucket.take()
    clock.advance(2)
    assert bucket.take()


def test_bucket_forgives_a_call_up_to_its_tolerance_early() -> None:
    clock = frozen_clock()
    start = clock.now()
    bucket = TokenBucket(rate=10, capacity=1, clock=clock.now, tolerance=0.02)
    assert bucket.take(start)
    assert bucket.take(start + 0.08)  # 20 ms before its token: it borrows from the next refill
    assert not bucket.take(start + 0.09)  # the next token was lent: too early
    assert bucket.take(start + 0.2)  # on time for its own slot again
    assert not bucket.take(start + 0.2)
    with pytest.raises(ValueError, match="tolerance"):
        TokenBucket(rate=1, capacity=1, clock=clock.now, tolerance=-0.001)


def test_bucket_judges_a_late_stamp_at_the_latest_one_seen() -> None:
    clock = frozen_clock()
    start = clock.now()
    bucket = TokenBucket(rate=1, capacity=1, clock=clock.now)
    assert bucket.take(start) and bucket.take(start + 1)
    assert not bucket.take(start + 0.5)  # reached the lock after the call stamped 1 s: no token left
    assert bucket.take(start + 2)  # and the late stamp did not run the refill backwards


def test_bucket_takes_exactly_spaced_stamps_despite_float_rounding() -> None:
    clock = frozen_clock()
    bucket = TokenBucket(rate=10, capacity=1, clock=clock.now)  # no tolerance at all
    stamps = [clock.now() + sum([0.1] * index) for index in range(1000)]  # sums that round
    assert all(bucket.take(stamp) for stamp in stamps)


def test_cpu_meter_adds_up_each_threads_own_cpu() -> None:
    readings = iter([5.0, 5.5, 1.0, 1.125])
    meter = CpuMeter(thread_clock=lambda: next(readings))
    first = meter.start()
    meter.stop(first)
    meter.stop(meter.start())
    assert meter.seconds == 0.625
    real = CpuMeter()  # time.thread_time: only this thread's CPU, and it moves with work
    started = real.start()
    sum(index * index for index in range(200_000))
    real.stop(started)
    assert real.seconds > 0


def test_lost_create_answers_count_down_and_can_be_cancelled() -> None:
    lost = LostCreateAnswers()
    assert not lost.take()
    lost.arm(2)
    assert [lost.take(), lost.take(), lost.take()] == [True, True, False]
    lost.arm(5)
    lost.arm(0)
    assert (lost.pending, lost.take()) == (0, False)
    with pytest.raises(ValueError, match=">= 0"):
        lost.arm(-1)


def record(path: str, http_status: int, error_code: int = 0, fault: str | None = None) -> RequestRecord:
    return RequestRecord(0.0, 0.0, "GET", path, {}, (), http_status, error_code, fault, True)


def test_ledger_counts_what_it_records_and_sorts_by_arrival() -> None:
    ledger = Ledger()
    first, second = ledger.arrive(), ledger.arrive()
    ledger.add(second, record("/b", 0, fault="lost_create"), "business", billed=1)
    ledger.add(first, record("/a", 429, error_code=67200002), "business", billed=0)
    ledger.count("reports_created")
    stats = ledger.stats()
    assert (stats["requests"], stats["business_calls"], stats["billed_units"]) == (2, 2, 1)
    assert stats["errors"] == {"67200002": 1} and stats["faults"] == {"lost_create": 1}
    assert stats["http_statuses"] == {"0": 1, "429": 1} and stats["reports_created"] == 1
    assert [r.path for r in ledger.records()] == ["/a", "/b"]  # arrival order
    assert [r.path for r in ledger.since(1)] == ["/a"]  # completion order cursor
    assert ledger.clear() == 2 and ledger.records() == []
