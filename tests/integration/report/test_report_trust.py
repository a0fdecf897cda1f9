"""A report is paid for once, whatever is lost on the way; a status PatSnap never documented is an error;
a cancelled trigger leaves nothing behind and never blocks the triggerer's shared executor."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.triggers.base import BaseTrigger

from airflow_provider_patsnap._compat import HAS_RESUMABLE_JOBS, AirflowFailException
from airflow_provider_patsnap.exceptions import (
    PatsnapCancelledError,
    PatsnapQuotaError,
    PatsnapReportError,
    PatsnapTransientError,
)
from airflow_provider_patsnap.hooks._shared import TOKEN_FAILURE_BACKOFF, reset_shared_state
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.operators.report import PatsnapCreateValueReportOperator
from airflow_provider_patsnap.report import CREATE_PATH, STATUS_PATH, ReportStatus
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.triggers.patsnap import PatsnapReportTrigger
from tests.helpers import (
    CONN_ENV,
    FakeClock,
    FakeTaskInstance,
    FakeTaskStateStore,
    KilledWhileWaiting,
    RawRequest,
    RawServer,
    creates,
    envelope,
    http_response,
)

PN = "CN108977442B"
JOB = "1579434053399036123"
# Real-looking credentials: every message is scrubbed of them, and a one-letter secret would mask
# every "s" and "c" of a message.
CLIENT, SECRET = "trust-client", "trust-secret"


def try_create(
    store: FakeTaskStateStore, ti: FakeTaskInstance | None = None, patent: str = PN, **kwargs: Any
) -> str:
    """One try of the create task (a retry gets a new task instance, the same task state store)."""
    operator = PatsnapCreateValueReportOperator(task_id="create_report", patent_number=patent, **kwargs)
    return operator.execute({"ti": ti or FakeTaskInstance(), "task_state_store": store})


def test_a_lost_create_answer_is_an_unknown_outcome_never_a_retry(
    start_sandbox: Callable[..., Sandbox],
) -> None:
    sandbox = start_sandbox(max_retries=3)
    sandbox.lose_create_answers(1)
    store = FakeTaskStateStore()
    with pytest.raises(PatsnapReportError, match="may have been created and paid") as first:
        try_create(store)
    assert isinstance(first.value, AirflowFailException)  # Airflow does not retry it either
    assert sandbox.report_jobs_created == 1
    # A retry (or a clear) of the same task instance does not pay again...
    with pytest.raises(PatsnapReportError, match="recreate_after_lost_answer=True"):
        try_create(store)
    assert sandbox.report_jobs_created == 1
    # ...until someone decides to.
    job_id = try_create(store, recreate_after_lost_answer=True)
    assert sandbox.report_jobs_created == 2
    assert store.values == {"patsnap_report_job_id": job_id}


def test_a_definite_rejection_leaves_no_unknown_outcome(start_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = start_sandbox(fault_rate=1.0, faults=("quota",))
    store = FakeTaskStateStore()
    with pytest.raises(PatsnapQuotaError):
        try_create(store)
    assert store.values == {}  # PatSnap said no: nothing was created, a later try may create
    sandbox.set_fault_rate(0)
    try_create(store)
    assert sandbox.report_jobs_created == 1


def test_a_token_endpoint_outage_is_retried_by_airflow_and_pays_once(
    start_sandbox: Callable[..., Sandbox],
) -> None:
    """Nothing reached PatSnap, so nothing may have been paid: Airflow's retry (same task state) creates."""
    clock = FakeClock()
    reset_shared_state(clock)
    sandbox = start_sandbox(max_retries=3)
    sandbox.fail_token_requests(1)
    store = FakeTaskStateStore()
    with pytest.raises(PatsnapTransientError, match="token request failed") as first:
        try_create(store)
    assert not isinstance(first.value, AirflowFailException)  # Airflow's retries apply
    assert store.values == {} and creates(sandbox) == 0
    clock.advance(TOKEN_FAILURE_BACKOFF)  # the retry comes after the task's retry_delay
    job_id = try_create(store)
    assert creates(sandbox) == sandbox.report_jobs_created == 1
    assert store.values == {"patsnap_report_job_id": job_id}


def test_a_kill_during_the_rate_limit_wait_is_not_an_unknown_outcome(
    start_sandbox: Callable[..., Sandbox],
) -> None:
    clock = KilledWhileWaiting()
    reset_shared_state(clock)
    sandbox = start_sandbox(client_qps=5)
    PatsnapHook().transport.rate_limiter.reserve()  # another call took this instant's slot: the create waits
    operator = PatsnapCreateValueReportOperator(task_id="create_report", patent_number=PN)
    clock.kill = operator.on_kill
    store = FakeTaskStateStore()
    with pytest.raises(PatsnapCancelledError):
        operator.execute({"ti": FakeTaskInstance(), "task_state_store": store})
    assert store.values == {} and creates(sandbox) == 0
    assert clock.waits  # it was stopped in the rate-limit wait, before anything was sent


def test_the_attempt_is_recorded_before_the_create_goes_out(vendor: RawServer) -> None:
    store = FakeTaskStateStore()
    state_when_the_request_arrived: list[dict[str, Any]] = []

    def answer(connection: socket.socket, request: RawRequest) -> None:
        state_when_the_request_arrived.append(dict(store.values))
        connection.sendall(http_response(200, envelope({"job_id": JOB})))

    vendor.script(CREATE_PATH, answer)
    assert try_create(store) == JOB
    assert state_when_the_request_arrived == [{"patsnap_report_create_attempt": PN}]
    assert store.values == {"patsnap_report_job_id": JOB}


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[RawServer]:
    peer = RawServer()
    peer.script(
        "/oauth/token", http_response(200, json.dumps({"token": "trust-token", "expires_in": 1799}).encode())
    )
    monkeypatch.setenv(CONN_ENV, peer.connection_json(SECRET, CLIENT, qps=0, max_retries=0, timeout=1))
    yield peer
    peer.close()


def status_answer(**data: Any) -> bytes:
    return http_response(200, envelope({"job_id": JOB, **data}))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"job_status": 7}, "does not document"),
        ({}, "unreadable job_status None"),
        ({"job_status": "done"}, "unreadable job_status 'done'"),
        ({"job_status": "2.7"}, "unreadable job_status '2.7'"),
        ({"job_status": "Infinity"}, "unreadable job_status 'Infinity'"),
        ({"job_status": "sNaN"}, "unreadable job_status 'sNaN'"),
        ({"job_status": "\u0662"}, "unreadable job_status '\u0662'"),  # an Arabic-Indic 2
        ({"job_status": True}, "unreadable job_status True"),
        ({"job_status": " 2.0 "}, "sent no download_url"),  # read as done: a float arrives as text
        ({"job_status": ReportStatus.EXPORTING, "job_id": "1579434053399036999"}, "when asked about job"),
        ({"job_status": ReportStatus.DONE}, "sent no download_url"),
    ],
    ids=[
        "unknown",
        "missing",
        "text",
        "fraction",
        "infinity",
        "signalling-nan",
        "arabic-indic-digit",
        "bool",
        "float-text",
        "other-job",
        "done-without-link",
    ],
)
def test_a_retry_that_finds_an_odd_status_fails_instead_of_paying_again(
    vendor: RawServer, data: dict[str, Any], message: str
) -> None:
    vendor.script(STATUS_PATH, status_answer(**data))
    store = FakeTaskStateStore()
    store.set("patsnap_report_job_id", JOB)  # an earlier try created the job
    with pytest.raises(PatsnapReportError, match=message):
        try_create(store)
    assert vendor.requests_to(CREATE_PATH) == []


def run_trigger(trigger: PatsnapReportTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def test_an_unknown_status_ends_the_trigger_with_an_error_at_once(vendor: RawServer) -> None:
    vendor.script(STATUS_PATH, status_answer(job_status=7))
    trigger = PatsnapReportTrigger(job_id=JOB, end_time=time.time() + 3600, poll_interval=0.01)
    [event] = run_trigger(trigger)
    assert event["status"] == "error" and "does not document" in event["message"]
    assert len(vendor.requests_to(STATUS_PATH)) == 1


class Hang:
    """Accepts the status request and never answers until released; tells when the client hung up."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.client_hung_up = threading.Event()

    def __call__(self, connection: socket.socket, request: RawRequest) -> None:
        self.started.set()
        connection.settimeout(30)
        try:
            if connection.recv(1) == b"":
                self.client_hung_up.set()
        except OSError:
            self.client_hung_up.set()


def trigger_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("patsnap-report-")]


def test_a_cancelled_trigger_leaves_no_thread_or_socket(
    vendor: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A call may hang as long as the test needs: only cancellation may end it.
    monkeypatch.setenv(CONN_ENV, vendor.connection_json(SECRET, CLIENT, qps=0, max_retries=0, timeout=60))
    hang = Hang()
    vendor.script(STATUS_PATH, hang)
    trigger = PatsnapReportTrigger(job_id=JOB, end_time=time.time() + 3600, poll_interval=0.01)

    async def cancel_mid_poll() -> None:
        task = asyncio.ensure_future(anext(aiter(trigger.run())))
        await asyncio.get_running_loop().run_in_executor(None, hang.started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_mid_poll())
    assert hang.client_hung_up.wait(10)  # the socket of the call in flight was closed
    for thread in trigger_threads():
        thread.join(10)
    assert trigger_threads() == []


class SlowConnection:
    """``get_connection`` as a slow secrets backend makes it: it blocks until the test releases it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reading = threading.Event()
        self.release = threading.Event()
        read = PatsnapHook.get_connection

        def slow(conn_id: str) -> Any:
            self.reading.set()
            assert self.release.wait(30), "the test never released the connection"
            return read(conn_id)

        monkeypatch.setattr(PatsnapHook, "get_connection", staticmethod(slow))


def test_a_hook_cancelled_while_its_connection_is_read_sends_nothing(
    vendor: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = SlowConnection(monkeypatch)
    hook = PatsnapHook()
    raised: list[BaseException] = []

    def poll() -> None:
        try:
            hook.get_report_state(JOB)
        except BaseException as error:  # reported to the test, which checks it
            raised.append(error)

    caller = threading.Thread(target=poll)
    caller.start()
    assert connection.reading.wait(10)
    hook.cancel()  # on_kill, while there is no transport yet
    connection.release.set()
    caller.join(10)
    assert not caller.is_alive()
    assert [type(error) for error in raised] == [PatsnapCancelledError]
    assert vendor.connections == 0 and vendor.seen == []


def test_a_trigger_cancelled_while_its_connection_is_read_leaves_nothing_behind(
    vendor: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were the status call made, it would hang as long as the connection's timeout allows.
    monkeypatch.setenv(CONN_ENV, vendor.connection_json(SECRET, CLIENT, qps=0, max_retries=0, timeout=60))
    vendor.script(STATUS_PATH, Hang())
    connection = SlowConnection(monkeypatch)
    trigger = PatsnapReportTrigger(job_id=JOB, end_time=time.time() + 3600, poll_interval=0.01)

    async def cancel_while_the_connection_is_read() -> None:
        task = asyncio.ensure_future(anext(aiter(trigger.run())))
        assert await asyncio.get_running_loop().run_in_executor(None, connection.reading.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_while_the_connection_is_read())
    connection.release.set()  # the secrets backend answers after the cancel
    for thread in trigger_threads():
        thread.join(10)
    assert trigger_threads() == []
    assert vendor.connections == 0 and vendor.seen == []


def test_report_triggers_never_occupy_the_shared_executor(
    vendor: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forty triggers hanging on the vendor, on a loop whose default executor has one thread: unrelated
    ``to_thread`` work still runs at once."""
    # A call may hang as long as the test needs: only cancellation may end it.
    monkeypatch.setenv(CONN_ENV, vendor.connection_json(SECRET, CLIENT, qps=0, max_retries=0, timeout=60))
    hang = Hang()
    vendor.script(STATUS_PATH, hang)

    async def main() -> None:
        from concurrent.futures import ThreadPoolExecutor

        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(1))
        triggers = [PatsnapReportTrigger(job_id=JOB, end_time=time.time() + 3600) for _ in range(40)]
        tasks = [asyncio.ensure_future(anext(aiter(trigger.run()))) for trigger in triggers]
        await loop.run_in_executor(None, hang.started.wait, 10)
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "unrelated work"), 10) == "unrelated work"
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


# --- ResumableJobMixin: Airflow 3.3's where it exists, the provider's equivalent before -----------------


def test_the_create_is_airflows_own_resumable_job_where_airflow_has_one() -> None:
    operator = PatsnapCreateValueReportOperator(task_id="create_report", patent_number=PN)
    if HAS_RESUMABLE_JOBS:
        from airflow.sdk import ResumableJobMixin

        assert isinstance(operator, ResumableJobMixin)
    assert operator.durable is True
    assert operator.external_id_key == "patsnap_report_job_id"  # never renamed: in-flight retries read it


def test_each_path_of_a_retry_returns_and_pushes_the_job_id(start_sandbox: Callable[..., Sandbox]) -> None:
    """Exporting: reconnect (the mixin returns nothing there); done: the job at once; failed: a new job."""
    sandbox = start_sandbox()  # its clock stands still until the test moves it
    store = FakeTaskStateStore()
    first = try_create(store)
    reconnected = FakeTaskInstance()
    assert try_create(store, ti=reconnected) == first == reconnected.xcom["job_id"]
    sandbox.advance(sandbox.config.report_delay)  # done
    done = FakeTaskInstance()
    assert try_create(store, ti=done, wait_for_completion=True, deferrable=True) == first  # no wait either
    assert done.xcom["job_id"] == first and creates(sandbox) == 1

    failing = FakeTaskStateStore()
    failed = try_create(failing, patent="CN1FAIL")
    sandbox.advance(sandbox.config.report_delay)
    replaced = try_create(failing, patent="CN1FAIL")
    assert replaced != failed and failing.values == {"patsnap_report_job_id": replaced}
    assert creates(sandbox) == 3


def test_durable_false_keeps_nothing_and_every_try_creates(start_sandbox: Callable[..., Sandbox]) -> None:
    """What the mixin's ``durable=False`` says: submit, poll, result; no state read or written."""
    sandbox = start_sandbox()
    store = FakeTaskStateStore()
    first, second = try_create(store, durable=False), try_create(store, durable=False)
    assert first != second and creates(sandbox) == 2
    assert store.values == {}
    sandbox.lose_create_answers(1)
    with pytest.raises(PatsnapReportError, match="may have been created and paid"):
        try_create(store, durable=False)  # a lost answer still fails its own try, without Airflow retries
    assert store.values == {}


def test_durable_comes_from_default_args_too() -> None:
    try:
        from airflow.sdk import DAG
    except ImportError:  # Airflow 2.11
        from airflow import DAG  # type: ignore[assignment]

    with DAG("reports", schedule=None, start_date=datetime(2024, 1, 1), default_args={"durable": False}):
        operator = PatsnapCreateValueReportOperator(task_id="create_report", patent_number=PN)
    assert operator.durable is False


# --- a user kills the deferred task: the trigger stops polling --------------------------------------

#: Airflow 3.3's triggerer calls BaseTrigger.on_kill when a user marks a deferred task failed or success,
#: or clears it; 2.11 only cancels the trigger.
TRIGGERER_CALLS_ON_KILL = hasattr(BaseTrigger, "on_kill")


def exporting() -> bytes:
    return status_answer(job_status=int(ReportStatus.EXPORTING))


def hanging_vendor(vendor: RawServer, monkeypatch: pytest.MonkeyPatch, *answers: Any) -> None:
    """Status calls answered with ``answers`` (the last repeats); a hung call ends only when cut."""
    monkeypatch.setenv(CONN_ENV, vendor.connection_json(SECRET, CLIENT, qps=0, max_retries=0, timeout=60))
    vendor.script(STATUS_PATH, *answers)


def no_trigger_thread_left() -> None:
    for thread in trigger_threads():
        thread.join(10)
    assert trigger_threads() == []


@pytest.mark.skipif(not TRIGGERER_CALLS_ON_KILL, reason="BaseTrigger.on_kill arrived in Airflow 3.3")
def test_a_user_kill_stops_polling_through_on_kill_as_airflows_triggerer_runs_it(
    vendor: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3.3's own TriggerRunner.run_trigger, cancelled the way its cancel_triggers() does for a
    task a user marked or cleared: on_kill runs, the call in flight is cut, no status call follows."""
    from airflow.jobs.triggerer_job_runner import _USER_ACTION_CANCEL_MSG, TriggerRunner

    hang = Hang()
    hanging_vendor(vendor, monkeypatch, exporting(), hang)  # the second check hangs in flight
    trigger = PatsnapReportTrigger(job_id=JOB, end_time=time.time() + 3600, poll_interval=0.01)
    trigger.task_instance = None  # type: ignore[assignment]
    kills: list[int] = []
    on_kill = trigger.on_kill

    async def counted_on_kill() -> None:
        kills.append(len(vendor.requests_to(STATUS_PATH)))
        await on_kill()

    trigger.on_kill = counted_on_kill  # type: ignore[method-assign]

    async def kill_mid_poll() -> None:
        runner = TriggerRunner()
        runner.triggers[1] = {"name": "patsnap-report", "events": 0}
        task = asyncio.create_task(runner.run_trigger(1, trigger))
        assert await asyncio.get_running_loop().run_in_executor(None, hang.started.wait, 10)
        task.cancel(_USER_ACTION_CANCEL_MSG)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert runner.events == deque()  # no event: the task is gone

    asyncio.run(kill_mid_poll())
    assert kills == [2]  # on_kill ran once, after the two checks
    assert hang.client_hung_up.wait(10)  # the call in flight was cut
    no_trigger_thread_left()
    assert len(vendor.requests_to(STATUS_PATH)) == 2  # and none after


def test_on_kill_ends_the_wait_between_checks_and_the_call_in_flight(
    vendor: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """on_kill on its own, while run() goes on: between checks (a wait of an hour) and mid-call."""
    hang = Hang()
    hanging_vendor(vendor, monkeypatch, exporting(), hang)
    waiting = PatsnapReportTrigger(job_id=JOB, end_time=time.time() + 7200, poll_interval=3600)
    calling = PatsnapReportTrigger(job_id=JOB, end_time=time.time() + 7200, poll_interval=0.01)

    async def kill(trigger: PatsnapReportTrigger, when: Callable[[], bool]) -> list[Any]:
        events: list[Any] = []

        async def run() -> None:
            events.extend([event async for event in trigger.run()])

        task = asyncio.create_task(run())
        while not when():
            await asyncio.sleep(0)  # hand the loop to run() until it got there: an event, not time
            await asyncio.to_thread(lambda: None)
        await trigger.on_kill()
        await asyncio.wait_for(task, 10)  # run() ends by itself, at once
        return events

    first = asyncio.run(kill(waiting, lambda: len(vendor.requests_to(STATUS_PATH)) == 1))
    assert first == [] and len(vendor.requests_to(STATUS_PATH)) == 1  # the hour's wait ended unasked
    second = asyncio.run(kill(calling, hang.started.is_set))
    assert second == [] and hang.client_hung_up.wait(10)
    no_trigger_thread_left()
    assert len(vendor.requests_to(STATUS_PATH)) == 2  # one check each: nothing after either kill


@pytest.mark.skipif(TRIGGERER_CALLS_ON_KILL, reason="Airflow 2.11-3.2: the triggerer only cancels")
def test_before_3_3_a_user_kill_stops_polling_through_the_cancel(
    vendor: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 2.11's TriggerRunner.run_trigger, cancelled as its triggerer cancels a trigger whose task
    a user marked or cleared: run()'s own cleanup cuts the call; no status call follows."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    hang = Hang()
    hanging_vendor(vendor, monkeypatch, exporting(), hang)
    trigger = PatsnapReportTrigger(job_id=JOB, end_time=time.time() + 3600, poll_interval=0.01)
    trigger.task_instance = SimpleNamespace(
        trigger_timeout=None, dag_id="d", task_id="t", run_id="r", map_index=-1
    )  # type: ignore[assignment]

    async def kill_mid_poll() -> None:
        runner = TriggerRunner()
        runner.triggers[1] = {"name": "patsnap-report", "events": 0}
        task = asyncio.create_task(runner.run_trigger(1, trigger))
        assert await asyncio.get_running_loop().run_in_executor(None, hang.started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(kill_mid_poll())
    assert hang.client_hung_up.wait(10)
    no_trigger_thread_left()
    assert len(vendor.requests_to(STATUS_PATH)) == 2
