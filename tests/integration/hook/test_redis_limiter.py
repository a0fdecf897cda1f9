"""One QPS for a deployment: the rate limit shared through a real redis-server (no mock of Redis).

The schedule tests assert on the slots Redis hands out (its own clock), never on real sleeping, so a busy
machine cannot make them flake: a slot is a promise, and what matters is that no two promises are closer
than ``1/qps``. Each check is also run against the per-process limiter, to show that it can fail.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_patsnap.connection import ConnectionSettings, parse_connection
from airflow_provider_patsnap.exceptions import PatsnapError, PatsnapFailFastError
from airflow_provider_patsnap.hooks import _redis_limiter
from airflow_provider_patsnap.hooks._redis_limiter import (
    PROBE_INTERVAL,
    RETRY_WAITS,
    SCRIPT,
    RedisRateLimiter,
    Reservation,
    SlotSchedule,
    bounded,
    identity_keys,
    redis_rate_limiter,
)
from airflow_provider_patsnap.hooks._shared import RateLimiter
from tests.helpers import FakeClock, free_port
from tests.redis_server import RedisServer

US = 1_000_000
RATE_LIMITED = 67200002


def settings(redis_conn_id: str | None, qps: float = 50, login: str = "shared-client") -> ConnectionSettings:
    extra = {"qps": qps, "rate_limit_redis_conn_id": redis_conn_id}
    return parse_connection(
        SimpleNamespace(
            conn_id="patsnap_x",
            host="https://patsnap.test",
            port=None,
            login=login,
            password="secret",
            extra_dejson=extra,
        )
    )


def busiest(slots: list[int], window: int) -> int:
    """The most slots in any half-open window of ``window`` µs."""
    ordered, first, most = sorted(slots), 0, 0
    for last, slot in enumerate(ordered):
        while slot - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def schedule_problems(slots: list[int], qps: float) -> list[str]:
    """What breaks "one QPS": two slots closer than 1/qps, or a window holding more than qps x window + 1."""
    ordered = sorted(slots)
    interval = US / qps
    found = [
        f"slots {a} and {b} are {b - a} µs apart (< {interval:.0f})"
        for a, b in itertools.pairwise(ordered)
        if b - a < interval
    ][:3]
    for seconds in (0.1, 1.0, 2.5):
        most = busiest(ordered, round(seconds * US))
        if most > qps * seconds + 1:
            found.append(f"{most} slots within {seconds} s (at most {qps * seconds + 1:g})")
    return found


def take_in_threads(takers: list[Callable[[], int]], per_thread: int, threads_each: int) -> list[int]:
    """Every taker used by ``threads_each`` threads at once, ``per_thread`` slots a thread."""
    slots: list[int] = []
    lock, start = threading.Lock(), threading.Barrier(len(takers) * threads_each)

    def run(take: Callable[[], int]) -> None:
        start.wait()
        taken = [take() for _ in range(per_thread)]
        with lock:
            slots.extend(taken)

    workers = [threading.Thread(target=run, args=(take,)) for take in takers for _ in range(threads_each)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return slots


# --- (a) many limiters, one schedule ---------------------------------------------------------------


def test_limiters_in_threads_share_one_schedule(redis_conn: str) -> None:
    qps = 50
    limiters = [redis_rate_limiter(settings(redis_conn, qps), FakeClock()) for _ in range(4)]
    slots = take_in_threads([lambda lim=lim: lim.take().slot for lim in limiters], 50, threads_each=2)
    assert len(slots) == len(set(slots)) == 400
    assert schedule_problems(slots, qps) == []
    # The same four "processes", each with its own limiter: the check fails (it can).
    local = [RateLimiter(qps, clock=time.monotonic) for _ in range(4)]
    slots = take_in_threads(
        [lambda lim=lim: round((time.monotonic() + lim.reserve()) * US) for lim in local], 50, threads_each=2
    )
    assert schedule_problems(slots, qps)


SLOT_TAKER = """
import json, sys, time
from types import SimpleNamespace
import redis
from airflow_provider_patsnap.connection import parse_connection
from airflow_provider_patsnap.hooks._shared import SystemClock
from airflow_provider_patsnap.hooks._redis_limiter import RedisRateLimiter, bounded
from airflow_provider_patsnap.hooks._shared import RateLimiter

port, qps, count, mode = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
conn = SimpleNamespace(conn_id="p", host="https://patsnap.test", port=None, login="shared-client",
    password="secret", extra_dejson={"qps": qps, "rate_limit_redis_conn_id": "redis_rate_limit"})
settings = parse_connection(conn)
if mode == "redis":
    limiter = RedisRateLimiter(bounded(redis.Redis(host="127.0.0.1", port=port)), settings, SystemClock())
    limiter.check()
    take = lambda: limiter.take().slot
else:
    local = RateLimiter(qps, clock=time.monotonic)
    take = lambda: round((time.monotonic() + local.reserve()) * 1e6)
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps([take() for _ in range(count)]), flush=True)
"""


@pytest.mark.parametrize("mode", ["redis", "local"])
def test_limiters_in_separate_processes_share_one_schedule(
    mode: str, redis_conn: str, redis_server: RedisServer
) -> None:
    """Three processes (as three tasks on workers), started together once all are ready."""
    qps, count = 50, 100
    command = [sys.executable, "-c", SLOT_TAKER, str(redis_server.port), str(qps), str(count), mode]
    processes = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        taken = [json.loads(process.communicate(timeout=60)[0]) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    slots = [slot for one in taken for slot in one]
    assert len(slots) == 3 * count
    if mode == "redis":
        assert schedule_problems(slots, qps) == []
    else:  # each process keeps qps on its own: together they do not
        assert schedule_problems(slots, qps)


def test_the_script_keeps_to_its_python_model(redis_conn: str, redis_server: RedisServer) -> None:
    """The fallback runs :class:`SlotSchedule`; the script must do exactly the same, fed Redis's time."""
    limiter = redis_rate_limiter(settings(redis_conn, qps=7), FakeClock())  # 1/7 s rounds up to 142858 µs
    model = SlotSchedule()
    rng = random.Random(5)
    ops = ["reserve"] * 30 + ["pause"] * 4 + ["slow"] * 6 + ["fast"] * 8 + ["peek"] * 2
    for step in range(300):
        op = rng.choice(ops)
        pause = rng.randrange(0, 400_000) if op == "pause" else 0
        shared = limiter._tried(op, pause, tries=1)
        expected = model.run(op, shared.now, 142858, pause)
        assert (shared.slot, shared.factor) == (expected.slot, expected.factor), (step, op)
    assert 1.0 <= model.factor <= 4.0


def test_a_clock_that_steps_back_keeps_the_distance_to_the_next_slot(
    redis_conn: str, redis_server: RedisServer
) -> None:
    """Redis's TIME is wall-clock time: if it steps back by an hour, the next slot moves with it rather
    than holding every caller for an hour."""
    limiter = redis_rate_limiter(settings(redis_conn, qps=10), FakeClock())
    now = limiter.check().now
    slot_key = identity_keys(settings(redis_conn))[0]
    hour = 3600 * US
    # As if the schedule had been written an hour "later": the next slot 1 s after that.
    redis_server.client().hset(slot_key, mapping={"next": now + hour + US, "seen": now + hour})
    taken = limiter.take()
    assert US - 10_000 < taken.slot - taken.now <= US  # about 1 s ahead, as it was


# --- (b) a pause or a slow-down from one process holds back the others ---------------------------


def test_a_pause_from_one_limiter_holds_back_the_others(redis_conn: str) -> None:
    paused, other, third = (redis_rate_limiter(settings(redis_conn, qps=50), FakeClock()) for _ in range(3))
    paused.take()
    paused.pause(2.0)  # PatSnap told this one "too fast" with Retry-After: 2
    held = paused.check()
    assert held.slot - held.now > 1.99 * US
    assert other.take().slot == held.slot  # the others wait for the end of the pause too
    assert third.take().slot == held.slot + US // 50
    # The same with two per-process limiters: the pause stays where it was said.
    local_paused, local_other = RateLimiter(50), RateLimiter(50)
    local_paused.pause(2.0)
    assert local_other.reserve() == 0.0


def test_a_slow_down_from_one_limiter_widens_everyone_s_spacing(redis_conn: str) -> None:
    told, other = (redis_rate_limiter(settings(redis_conn, qps=10), FakeClock()) for _ in range(2))
    told.slow_down()
    first, second = other.take(), other.take()
    assert second.slot - first.slot == 150_000  # 1.5 x 1/qps for every process
    assert other.interval == pytest.approx(0.15)
    other.speed_up()  # a call passed somewhere: everyone's spacing narrows
    assert told.take().factor == pytest.approx(1.5 * 0.98)
    for _ in range(30):
        told.slow_down()
    assert told.check().factor == 4.0  # at most 4 x 1/qps, as the per-process limiter


def test_limiters_with_other_credentials_or_a_lower_qps(redis_conn: str) -> None:
    """The budget is the identity's: a task's qps override spaces its own slots wider, out of the same
    budget; another client id has a schedule of its own. Redis holds no credential."""
    fast = redis_rate_limiter(settings(redis_conn, qps=10), FakeClock())
    slow = redis_rate_limiter(settings(redis_conn, qps=5), FakeClock())
    other = redis_rate_limiter(settings(redis_conn, qps=10, login="other-client"), FakeClock())
    a, b, c = fast.take(), slow.take(), fast.take()
    assert (b.slot - a.slot, c.slot - b.slot) == (100_000, 200_000)
    assert other.take().slot < c.slot
    keys = identity_keys(settings(redis_conn))
    assert all("shared-client" not in key and "secret" not in key for key in keys)


# --- (d) Redis unreachable: at the start, and mid-run ----------------------------------------------


def test_a_limiter_is_checked_when_it_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDIS_DOWN", json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": port})
    )
    clock = FakeClock()
    with pytest.raises(PatsnapError) as raised:
        redis_rate_limiter(settings("redis_down"), clock)
    message = str(raised.value)
    assert "Redis connection 'redis_down'" in message and "No PatSnap call was made" in message
    assert f"127.0.0.1:{port}" in message and "Connection refused" in message
    assert clock.waits == list(RETRY_WAITS)  # three tries first, on the clock
    with pytest.raises(PatsnapFailFastError, match=r"'no_such_redis'.*no Airflow connection with that id"):
        redis_rate_limiter(settings("no_such_redis"), clock)


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == _redis_limiter.__name__]


def test_redis_lost_mid_run_falls_back_to_a_safe_share_and_comes_back(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RedisServer() as server:
        monkeypatch.setenv("AIRFLOW_CONN_REDIS_FLAKY", server.connection_json)
        clock = FakeClock()
        mine = redis_rate_limiter(settings("redis_flaky", qps=10), clock)
        theirs = redis_rate_limiter(settings("redis_flaky", qps=10), clock)
        assert theirs.check().peers == 2  # two limiters running (both checked when made)
        mine.take()  # each may have half the QPS alone, should Redis go away
        server.stop()
        caplog.set_level(logging.WARNING, logger=_redis_limiter.__name__)
        waits_before = len(clock.waits)
        first = mine.take()
        assert clock.waits[waits_before:] == list(RETRY_WAITS)  # tried 3 times in all, on the clock
        assert not first.shared
        assert first.wait == pytest.approx(0.2)  # its first slot a share away: no burst as all fall back
        slots = [first.slot] + [mine.take().slot for _ in range(5)]
        assert {b - a for a, b in itertools.pairwise(slots)} == {200_000}  # qps 10 / 2 limiters
        assert mine.interval == pytest.approx(0.2)
        mine.pause(1.0)  # a "too fast" answer meanwhile holds this process
        assert mine.take().wait >= 1.0
        [warning] = said(caplog)
        assert "'redis_flaky'" in warning and "at most 5 times a second" in warning
        assert "2 limiter(s)" in warning
        server.start()  # back, empty, on the same port
        assert not mine.take().shared  # not asked again before PROBE_INTERVAL
        clock.advance(PROBE_INTERVAL)
        back = mine.take()
        assert back.shared and back.peers == 1
        assert "answers again" in said(caplog)[-1]
        assert theirs.take().slot == back.slot + 100_000  # one schedule again


def test_a_limiter_whose_script_was_flushed_loads_it_again(
    redis_conn: str, redis_server: RedisServer
) -> None:
    limiter = redis_rate_limiter(settings(redis_conn), FakeClock())
    redis_server.client().script_flush()
    assert limiter.take().shared
    assert redis_server.client().script_exists(_redis_limiter.SCRIPT_SHA) == [True]


def test_redis_costs_one_round_trip_a_call(redis_conn: str) -> None:
    """What a call pays for the shared limit: one EVALSHA when it takes its slot (a passing call costs
    nothing more unless the spacing was widened)."""
    limiter = redis_rate_limiter(settings(redis_conn, qps=10_000), FakeClock())
    client = limiter._client
    sent: list[str] = []
    execute = client.execute_command

    def counting(*args: Any, **kwargs: Any) -> Any:
        sent.append(str(args[0]))
        return execute(*args, **kwargs)

    client.execute_command = counting
    for _ in range(10):
        limiter.reserve()
        limiter.speed_up()
    assert sent == ["EVALSHA"] * 10
    started = time.perf_counter()
    for _ in range(500):
        limiter.reserve()
    per_reserve = (time.perf_counter() - started) / 500
    print(f"reserve through Redis: {per_reserve * 1e6:.0f} µs")
    assert per_reserve < 0.05  # loopback: far below a PatSnap call's spacing


def test_bounded_clients_fail_fast() -> None:
    """The limiter's client waits at most REDIS_TIMEOUT and never retries on its own (time.sleep)."""
    import redis

    client = bounded(redis.Redis(host="127.0.0.1", port=free_port()))
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == _redis_limiter.REDIS_TIMEOUT
    started = time.perf_counter()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert time.perf_counter() - started < 1.0
    assert Reservation(0, 0, 1.0, 1).wait == 0.0
    assert "TIME" in SCRIPT and RedisRateLimiter.__doc__
