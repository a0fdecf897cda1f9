"""Batch lookup against the sandbox over loopback: batching, missing ids, rate limit, faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_patsnap.endpoints import AWARD, LEGAL_INFORMATION, SEIC_CLASSIFICATION
from airflow_provider_patsnap.exceptions import PatsnapQuotaError
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.ids import InvalidPatentIdsError
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sandbox.data import patent_object
from tests.helpers import CONN_ENV


def numbers(count: int, prefix: str = "CN") -> list[str]:
    return [f"{prefix}{100000000 + i}A" for i in range(count)]


def business(sb: Any, path: str) -> list[Any]:
    return [record for record in sb.requests if record.path == path]


def test_250_ids_make_3_calls_of_at_most_100_and_missing_ids_are_reported(sandbox: Any) -> None:
    ids = [*numbers(248), "NODATA-1", "NODATA-2"]
    results = list(PatsnapHook().lookup(AWARD, ids, "patent_number"))
    calls = business(sandbox, AWARD.path)
    assert len(calls) == 3
    assert sorted(len(call.ids) for call in calls) == [50, 100, 100]
    assert sorted(i for call in calls for i in call.ids) == sorted(ids)
    expected_missing = {i for i in ids if patent_object("P032", "patent_number", i) is None}
    assert {"NODATA-1", "NODATA-2"} <= expected_missing
    assert {m for r in results for m in r.missing} == expected_missing
    got = {p["pn"]: p for r in results for p in r.patents}
    assert set(got) == set(ids) - expected_missing
    sample = ids[7] if ids[7] in got else next(iter(got))
    assert got[sample] == patent_object("P032", "patent_number", sample)


def test_duplicates_are_fetched_once_and_extra_params_are_sent(sandbox: Any) -> None:
    results = list(PatsnapHook().lookup(SEIC_CLASSIFICATION, "CN1A, CN2A,CN1A", params={"lang": "cn"}))
    (call,) = business(sandbox, SEIC_CLASSIFICATION.path)
    assert call.ids == ("CN1A", "CN2A")
    assert call.params["lang"] == "cn"
    assert sum(len(r.requested) for r in results) == 2


def test_patent_ids_are_sent_as_patent_id(sandbox: Any) -> None:
    ids = ["1e099a74-4378-4b84-9d13-f1b4ed5cb59b", "7353c607-0594-4592-b99e-aea9f517de17"]
    results = list(PatsnapHook().lookup(LEGAL_INFORMATION, ids, "patent_id"))
    (call,) = business(sandbox, LEGAL_INFORMATION.path)
    assert "patent_id" in call.params and "patent_number" not in call.params
    found = {p["patent_id"] for r in results for p in r.patents}
    assert found | set(results[0].missing) == set(ids)


@pytest.mark.parametrize("bad", ["", " , ", ["CN1", " "], ["CN 1"], ["X" * 65], [123]])
def test_bad_ids_are_rejected_before_any_call(sandbox: Any, bad: Any) -> None:
    with pytest.raises(InvalidPatentIdsError):
        list(PatsnapHook().lookup(AWARD, bad))
    assert sandbox.requests == []


def test_client_rate_limit_holds_under_concurrency(
    patsnap_sandbox_factory: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    qps = 10
    sb = patsnap_sandbox_factory(latency=0.3)
    monkeypatch.setenv(CONN_ENV, sb.connection_json(auth="secret", qps=qps))
    hook = PatsnapHook()
    list(hook.lookup(AWARD, numbers(3000), batch_size=100))
    arrivals = sorted(r.arrival for r in business(sb, AWARD.path))
    in_flight = sb.stats()["max_in_flight"]
    assert len(arrivals) == 30
    assert in_flight >= 2  # concurrency is real: several calls were in the server at once
    # Arrivals are stamped by the server's threads, which share this process's GIL: allow jitter of
    # a call or two per window, but the average rate must not exceed the limit.
    for window in (1.0, 2.0):
        busiest = max(sum(1 for t in arrivals if start <= t < start + window) for start in arrivals)
        assert busiest <= qps * window + 2
    assert (arrivals[-1] - arrivals[0]) >= (len(arrivals) - 1) / qps * 0.95


def test_server_qps_rejections_are_retried_without_loss(
    patsnap_sandbox_factory: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = patsnap_sandbox_factory(qps=5, burst=1)
    # The client believes it may go twice as fast as the server allows: 67200002 follows.
    monkeypatch.setenv(CONN_ENV, sb.connection_json(auth="secret", qps=10, max_retries=10))
    ids = numbers(1500)
    results = list(PatsnapHook().lookup(AWARD, ids))
    rejected = [r for r in business(sb, AWARD.path) if r.error_code == 67200002]
    assert rejected, "the server never pushed back; the test proves nothing"
    answered = {p["pn"] for r in results for p in r.patents} | {m for r in results for m in r.missing}
    assert answered == set(ids)
    sample = next(p for r in results for p in r.patents)
    assert sample == patent_object("P032", "patent_number", sample["pn"])


@pytest.mark.parametrize("fault", ["qps", "busy", "service", "http500", "http502", "drop", "slow"])
def test_injected_faults_are_retried_without_loss(
    patsnap_sandbox_factory: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    sb = patsnap_sandbox_factory(fault_rate=0.4, faults=(fault,), slow_seconds=1.0, seed=7)
    monkeypatch.setenv(CONN_ENV, sb.connection_json(auth="secret", qps=0, max_retries=8, timeout=0.5))
    ids = numbers(1000)
    hook = PatsnapHook()
    results = list(hook.lookup(AWARD, ids))
    while sb.stats()["in_flight"]:  # a slow answer is recorded when it completes, after the client gave up
        time.sleep(0.05)
    injected = [r for r in sb.requests if r.fault == fault]
    assert injected, f"no {fault} fault was injected"
    assert hook.stats.retries >= len(injected)
    got = {p["pn"] for r in results for p in r.patents} | {m for r in results for m in r.missing}
    assert got == set(ids)


def test_token_expiry_mid_run_is_survived(sandbox: Any) -> None:
    hook = PatsnapHook()
    list(hook.lookup(AWARD, numbers(200)))
    sandbox.expire_tokens()
    list(hook.lookup(AWARD, numbers(200)))
    assert hook.stats.token_requests == 2
    rejected = [r.error_code for r in business(sandbox, AWARD.path)].count(67200003)
    assert 1 <= rejected <= 2  # the batches in flight when it expired; one new token serves both


def test_token_is_shared_by_threads_and_hooks(sandbox: Any) -> None:
    hooks = [PatsnapHook() for _ in range(4)]
    threads = [threading.Thread(target=lambda h=h: list(h.lookup(AWARD, numbers(300)))) for h in hooks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sandbox.stats()["token_calls"] == 1


def test_api_key_connection_works(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", sandbox.connection_json(auth="key"))
    results = list(PatsnapHook().lookup(AWARD, numbers(10)))
    assert sum(len(r.requested) for r in results) == 10
    assert sandbox.stats()["token_calls"] == 0


def test_a_failed_batch_stops_the_run_and_says_how_much_was_not_fetched(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = PatsnapHook(concurrency=1)
    original = hook._fetch
    calls = 0

    def fetch_then_run_out_of_quota(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise PatsnapQuotaError("balance exhausted", error_code=67200005)
        return original(*args, **kwargs)

    monkeypatch.setattr(hook, "_fetch", fetch_then_run_out_of_quota)
    delivered = []
    with pytest.raises(PatsnapQuotaError) as raised:
        for result in hook.lookup(AWARD, numbers(1000)):
            delivered.append(result)
    assert 1 <= len(delivered) < 10
    not_fetched = 1000 - sum(len(r.requested) for r in delivered)
    assert f"{not_fetched} of 1000 id(s) were not fetched" in "".join(raised.value.__notes__)


def test_connection_test_button(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert PatsnapHook().test_connection()[0] is True
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", sandbox.connection_json(auth="key"))
    assert PatsnapHook().test_connection()[0] is True
    wrong = sandbox.connection_json(auth="secret").replace(sandbox.config.client_secret, "wrong-secret")
    monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", wrong)
    ok, message = PatsnapHook().test_connection()
    assert ok is False and "67200003" in message and "wrong-secret" not in message
