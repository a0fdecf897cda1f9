"""One QPS for a deployment (docs/performance.md): the connection extra that opts in, and the parts of
the Redis limiter that need no Redis. Everything that talks to a real redis-server is in
tests/integration/hook/test_redis_limiter.py."""

from __future__ import annotations

import hashlib
import json
import sys
from types import SimpleNamespace
from typing import Any

import pytest
import requests_mock

from airflow_provider_patsnap.connection import InvalidSettings, parse_connection
from airflow_provider_patsnap.exceptions import PatsnapFailFastError
from airflow_provider_patsnap.hooks._redis_limiter import (
    SCRIPT,
    SCRIPT_SHA,
    Reservation,
    SlotSchedule,
    identity_keys,
    interval_us,
)
from airflow_provider_patsnap.hooks._shared import MAX_SLOWDOWN, RateLimiter, shared_rate_limiter
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from tests.helpers import BASE_URL, FakeClock
from tests.repo.test_package_layout import PACKAGE, PACKAGE_DIR, imports, loaded_with


def connection(**extra: Any) -> SimpleNamespace:
    """A PatSnap connection as parse_connection reads it (client id ``id``, secret ``secret``)."""
    return SimpleNamespace(
        conn_id="patsnap_x",
        host="https://patsnap.test",
        port=None,
        login="id",
        password="secret",
        extra_dejson=extra,
    )


@pytest.mark.parametrize(
    "value, parsed",
    [(None, None), ("", None), ("   ", None), ("***", None), (" redis_patsnap ", "redis_patsnap")],
    ids=["absent", "empty", "blank", "masked", "padded"],
)
def test_the_redis_extra_names_a_connection_or_nothing(value: str | None, parsed: str | None) -> None:
    extra = {} if value is None else {"rate_limit_redis_conn_id": value}
    assert parse_connection(connection(**extra)).rate_limit_redis_conn_id == parsed


@pytest.mark.parametrize(
    "value, message",
    [
        (6379, "must be the id of an Airflow connection, got a int"),
        ({"host": "redis"}, "got a dict"),
        ("redis default", "no spaces"),
        ("r" * 251, "at most 250 characters"),
    ],
    ids=["number", "object", "space", "long"],
)
def test_a_bad_redis_extra_is_named_before_any_call(value: Any, message: str) -> None:
    with pytest.raises(InvalidSettings, match="extra 'rate_limit_redis_conn_id'") as raised:
        parse_connection(connection(rate_limit_redis_conn_id=value))
    assert message in str(raised.value)


# --- the schedule's arithmetic (what the Lua script runs; the integration tier holds the script to it) --


def test_slots_are_one_interval_apart_and_an_idle_schedule_saves_no_burst() -> None:
    schedule = SlotSchedule()
    slots = [schedule.run("reserve", 1_000, 200_000).slot for _ in range(4)]
    assert slots == [1_000, 201_000, 401_000, 601_000]  # time stood still: each waits one spacing more
    later = schedule.run("reserve", 5_000_000, 200_000)  # idle for seconds: no credit piled up
    assert (later.slot, later.wait) == (5_000_000, 0.0)
    assert schedule.run("reserve", 5_000_000, 200_000).slot == 5_200_000


def test_a_pause_moves_the_next_slot_and_never_pulls_it_closer() -> None:
    schedule = SlotSchedule()
    schedule.run("reserve", 0, 100_000)
    assert schedule.run("pause", 0, 100_000, pause=2_000_000).slot == 2_000_000
    assert schedule.run("pause", 0, 100_000, pause=500_000).slot == 2_000_000  # shorter: no change
    assert schedule.run("reserve", 10, 100_000).slot == 2_000_000
    assert schedule.run("peek", 10, 100_000).slot == 2_100_000


def test_the_spacing_widens_by_half_at_most_four_times_and_narrows_back_to_qps() -> None:
    schedule = SlotSchedule()
    assert schedule.run("slow", 0, 100_000).factor == 1.5
    schedule.run("reserve", 0, 100_000)
    assert schedule.run("reserve", 0, 100_000).slot == 150_000
    for _ in range(10):
        schedule.run("slow", 0, 100_000)
    assert schedule.factor == MAX_SLOWDOWN == 4.0
    assert schedule.run("fast", 0, 100_000).factor == pytest.approx(3.92)
    for _ in range(200):
        schedule.run("fast", 0, 100_000)
    assert schedule.factor == 1.0  # back to qps, never faster


def test_a_clock_stepping_back_keeps_the_distance_to_the_next_slot() -> None:
    schedule = SlotSchedule()
    schedule.run("reserve", 10_000_000, 1_000_000)  # next slot at 11 s, written at 10 s
    stepped = schedule.run("reserve", 4_000_000, 1_000_000)  # the clock went back 6 s
    assert stepped.slot - stepped.now == 1_000_000  # still 1 s away, not 7 s


@pytest.mark.parametrize(
    "qps, spacing", [(5, 200_000), (3, 333_334), (7, 142_858), (0.5, 2_000_000), (10_000, 100)]
)
def test_the_spacing_in_microseconds_is_never_shorter_than_one_over_qps(qps: float, spacing: int) -> None:
    assert interval_us(qps) == spacing
    assert spacing >= 1_000_000 / qps


def test_reservations_never_wait_a_negative_time() -> None:
    assert Reservation(now=10, slot=5, factor=1.0, peers=1).wait == 0.0
    assert Reservation(now=0, slot=1_500_000, factor=1.0, peers=1).wait == 1.5


def test_redis_keys_hold_a_digest_of_the_identity_never_the_apikey() -> None:
    first = parse_connection(connection(rate_limit_redis_conn_id="r"))
    keys = identity_keys(first)
    assert len(set(keys)) == 3
    assert all(key.startswith("patsnap:rate:{") and "id" not in key.split("}")[1] for key in keys)
    assert not any(first.apikey in key or "secret" in key for key in keys)
    tag = {key[key.index("{") : key.index("}") + 1] for key in keys}
    assert len(tag) == 1  # one hash slot in a Redis Cluster: the script's keys must share it
    other = SimpleNamespace(**{**vars(connection()), "login": "other-id"})
    assert identity_keys(parse_connection(other)) != keys
    assert identity_keys(parse_connection(connection(qps=1))) == keys  # the budget is the identity's
    assert "patsnap:" not in SCRIPT and hashlib.sha1(SCRIPT.encode()).hexdigest() == SCRIPT_SHA


# --- choosing the backend ---------------------------------------------------------------------------


def test_without_the_extra_the_per_process_limiter_is_unchanged(clock: FakeClock) -> None:
    plain = parse_connection(connection(qps=5))
    limiter = shared_rate_limiter(plain)
    assert type(limiter) is RateLimiter
    assert shared_rate_limiter(plain) is limiter  # one per identity and qps in the process, as before
    # qps 0 sets no limit: nothing to share, Redis is not even asked (this tier has no sockets).
    unlimited = shared_rate_limiter(parse_connection(connection(qps=0, rate_limit_redis_conn_id="r")))
    assert type(unlimited) is RateLimiter and unlimited.reserve() == 0.0


def test_without_the_redis_provider_the_task_fails_before_any_call(
    vendor: requests_mock.Mocker, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "airflow.providers.redis.hooks.redis", None)  # not installed
    extra = {"qps": 5, "rate_limit_redis_conn_id": "redis_rate_limit"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        json.dumps({"conn_type": "patsnap", "host": BASE_URL, "login": "c", "password": "s", "extra": extra}),
    )
    with pytest.raises(PatsnapFailFastError) as raised:
        PatsnapHook().call("GET", "/advanced-patent-data/award-data")
    assert "pip install 'airflow-provider-patsnap[redis]'" in str(raised.value)
    assert "No PatSnap call was made" in str(raised.value)
    assert vendor.call_count == 0  # not even a token
    ok, message = PatsnapHook().test_connection()
    assert not ok and "apache-airflow-providers-redis" in message


# --- nothing Redis-related loads with a DAG file -----------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        f"{PACKAGE}.operators.patsnap",
        f"{PACKAGE}.operators.report",
        f"{PACKAGE}.hooks.patsnap",
        f"{PACKAGE}.hooks._transport",
        f"{PACKAGE}.hooks._pipeline",
        f"{PACKAGE}.sensors.patsnap",
        f"{PACKAGE}.triggers.patsnap",
    ],
)
def test_no_redis_module_loads_with_operators_or_hooks(module: str) -> None:
    loaded = loaded_with(module)
    assert sorted(name for name in loaded if name.split(".")[0] == "redis" or "redis" in name) == []


def test_the_redis_limiter_loads_the_standard_library_and_the_package_only() -> None:
    path = PACKAGE_DIR / "hooks" / "_redis_limiter.py"
    at_load = imports(path, at_load=True)
    assert (
        sorted(m for m in at_load if m.split(".")[0] not in (PACKAGE, "__future__", *sys.stdlib_module_names))
        == []
    )
    anywhere = imports(path, at_load=False)
    assert {"redis.exceptions", "airflow.providers.redis.hooks.redis"} <= anywhere  # the parser sees them
