"""One QPS for a deployment, end to end: hooks and the report trigger against the sandbox, their rate
limit shared through a real redis-server (the ``rate_limit_redis_conn_id`` extra), and what a task does
when that Redis cannot be used."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_patsnap.connection import ConnectionSettings
from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.exceptions import PatsnapError, PatsnapFailFastError
from airflow_provider_patsnap.hooks._redis_limiter import redis_rate_limiter
from airflow_provider_patsnap.hooks._shared import reset_shared_state
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.triggers.patsnap import PatsnapReportTrigger
from tests.helpers import CONN_ENV, FakeClock, business, free_port, numbers
from tests.integration.hook.test_redis_limiter import busiest

US = 1_000_000
RATE_LIMITED = 67200002


# --- (c) end to end: two hooks against the sandbox ------------------------------------------------


def run_two_hooks(sandbox: Sandbox, batches: int) -> None:
    """Two hooks, each as a task process of its own (its own token, its own limiter object), looking up
    ``batches`` batches of 100 at once."""
    hooks = []
    for _ in range(2):
        reset_shared_state()  # what a second process would start from
        hook = PatsnapHook()
        hook.transport  # noqa: B018 - made now, with this process-wide state
        hooks.append(hook)
    errors: list[BaseException] = []

    def run(hook: PatsnapHook, start: int) -> None:
        try:
            list(hook.lookup(AWARD, numbers(batches * 100, start=start)))
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(hook, 100000000 + i * 10**6)) for i, hook in enumerate(hooks)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "per-process"])
def test_two_tasks_at_the_connection_qps_stay_within_the_vendor_qps(
    shared: bool,
    patsnap_sandbox_factory: Callable[..., Sandbox],
    redis_conn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    qps = 20
    # A burst of 5: the vendor's window forgives a little jitter in arrivals, not a second task's calls.
    sandbox = patsnap_sandbox_factory(qps=qps, burst=5)
    extra: dict[str, Any] = {"qps": qps, "timeout": 5, "max_retries": 10}
    if shared:
        extra["rate_limit_redis_conn_id"] = redis_conn
    monkeypatch.setenv(CONN_ENV, sandbox.connection_json(**extra))
    run_two_hooks(sandbox, batches=25)
    calls = business(sandbox, AWARD.path)
    refused = [call for call in calls if call.error_code == RATE_LIMITED]
    arrivals = sorted(call.arrival for call in calls)
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    if shared:
        assert (len(calls), len(refused)) == (50, 0)
        assert rate <= qps * 1.1, f"{rate:.1f} calls/s"
        # No arrival precedes its slot; one delayed by up to 0.1 s (a busy machine) may join a later second.
        assert busiest([round(arrival * US) for arrival in arrivals], US) <= qps + 3
    else:  # the same two tasks without the extra: each keeps qps, together twice as fast
        assert refused or rate > 1.5 * qps, f"{rate:.1f} calls/s, {len(refused)} refused"


def test_the_report_trigger_draws_from_the_same_budget(
    patsnap_sandbox_factory: Callable[..., Sandbox], redis_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = patsnap_sandbox_factory(frozen_clock=True, report_delay=60)
    monkeypatch.setenv(CONN_ENV, sandbox.connection_json(qps=5, rate_limit_redis_conn_id=redis_conn))
    job_id = PatsnapHook().create_value_report(patent_number="CN110650438A")
    sandbox.advance(60)
    task = redis_rate_limiter(parse_connection_of_default(), FakeClock())  # a data task's limiter
    before = task.take()
    trigger = PatsnapReportTrigger(job_id=str(job_id), end_time=time.time() + 30, poll_interval=0.1)

    async def events() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    assert [event["status"] for event in asyncio.run(events())] == ["success"]
    after = task.check()
    # The trigger's status call took the slot after the task's: the next free one is two spacings on.
    assert after.slot >= before.slot + 2 * 200_000
    assert task.take().peers >= 2  # the task's limiter, and the trigger's hook's (and the create's)


def parse_connection_of_default() -> ConnectionSettings:
    return PatsnapHook().settings


# --- (d) Redis unreachable ---------------------------------------------------------------------------


def test_an_unreachable_redis_fails_the_task_before_any_call(
    patsnap_sandbox_factory: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = patsnap_sandbox_factory()
    port = free_port()  # nothing listens there
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDIS_DOWN", json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": port})
    )
    monkeypatch.setenv(CONN_ENV, sandbox.connection_json(qps=5, rate_limit_redis_conn_id="redis_down"))
    with pytest.raises(PatsnapError) as raised:
        list(PatsnapHook().lookup(AWARD, numbers(3)))
    message = str(raised.value)
    assert "Redis connection 'redis_down'" in message and "No PatSnap call was made" in message
    assert str(port) in message  # where it looked
    assert sandbox.requests == []  # not even a token
    ok, said = PatsnapHook().test_connection()
    assert not ok and "redis_down" in said


def test_a_redis_connection_that_does_not_exist_fails_fast(
    patsnap_sandbox_factory: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = patsnap_sandbox_factory()
    monkeypatch.setenv(CONN_ENV, sandbox.connection_json(qps=5, rate_limit_redis_conn_id="no_such_redis"))
    with pytest.raises(PatsnapFailFastError, match=r"'no_such_redis'.*no Airflow connection with that id"):
        PatsnapHook().call("GET", AWARD.path, params={"patent_number": "CN1"})
    assert sandbox.requests == []
