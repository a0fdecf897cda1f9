"""What a run was billed, what it may have been billed, and a budget no retry can pass; batches that
arrive while the caller is busy come as one group."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
import requests_mock
from urllib3.exceptions import MaxRetryError, NewConnectionError

from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.exceptions import PatsnapBudgetError
from airflow_provider_patsnap.hooks._billing import BillingMeter
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.ids import PatentIds
from tests.helpers import BASE_URL, FakeClock

URL = f"{BASE_URL}{AWARD.path}"


def ids(count: int, start: int = 0) -> list[str]:
    return [f"CN{100000000 + start + i}A" for i in range(count)]


def answer(request: Any, context: Any) -> dict[str, Any]:
    """Every requested number comes back (and is billed)."""
    numbers = request.qs["patent_number"][0].upper().split(",")
    return {"status": True, "error_code": 0, "data": [{"pn": number} for number in numbers]}


def business_calls(vendor: requests_mock.Mocker) -> int:
    return sum(1 for request in vendor.request_history if request.method == "GET")


def test_the_meter_counts_billed_lost_and_refused_units_against_its_budget() -> None:
    meter = BillingMeter(max_units=250)
    meter.reserve(100)
    meter.reserve(100)
    assert meter.units_left() == 50  # units on the wire count as spent until their answer settles them
    meter.answered(100, billed=90)  # 10 of them had no data: not billed
    meter.lost(100)  # the answer never came: maybe billed
    meter.reserve(50)
    meter.refused(50)  # PatSnap answered with an error: not billed
    assert (meter.billed, meter.unknown, meter.units_left()) == (90, 100, 60)
    with pytest.raises(PatsnapBudgetError, match=r"90 unit\(s\) billed, 100 more may have been"):
        meter.reserve(61)
    assert BillingMeter().units_left() is None


@pytest.mark.parametrize(
    ("first_answer", "lost"),
    [
        ({"exc": requests.exceptions.ReadTimeout("read timed out")}, True),
        ({"exc": requests.exceptions.ChunkedEncodingError("body cut short")}, True),
        ({"status_code": 502, "text": "<html>Bad Gateway</html>"}, True),
        ({"exc": requests.exceptions.ConnectTimeout("connect timed out")}, False),
        (
            {
                "exc": requests.exceptions.ConnectionError(
                    MaxRetryError(None, "/", NewConnectionError(None, "refused"))  # type: ignore[arg-type]
                )
            },
            False,
        ),
        ({"json": {"status": False, "error_code": 67200100, "error_msg": "busy"}}, False),
    ],
    ids=["read-timeout", "cut-body", "gateway-502", "connect-timeout", "refused", "vendor-busy"],
)
def test_an_answer_lost_after_sending_counts_as_maybe_billed(
    vendor: requests_mock.Mocker, first_answer: dict[str, Any], lost: bool
) -> None:
    vendor.get(URL, [first_answer, {"json": answer}])
    meter = BillingMeter()
    result = PatsnapHook().fetch_batch(AWARD, ids(100), "patent_number", meter=meter)
    assert len(result.patents) == 100
    assert (meter.billed, meter.unknown) == (100, 100 if lost else 0)


def test_no_retry_goes_past_the_budget_after_a_lost_answer(vendor: requests_mock.Mocker) -> None:
    """The first answer may have been billed: a second call for the same 100 patents could make 200."""
    vendor.get(URL, [{"exc": requests.exceptions.ReadTimeout("read timed out")}, {"json": answer}])
    meter = BillingMeter(max_units=150)
    with pytest.raises(PatsnapBudgetError, match="100 more may have been"):
        PatsnapHook().fetch_batch(AWARD, ids(100), "patent_number", meter=meter)
    assert business_calls(vendor) == 1  # the retry was never sent
    assert (meter.billed, meter.unknown, meter.units_left()) == (0, 100, 50)


def test_a_lookup_stopped_by_its_budget_says_how_many_ids_were_not_fetched(
    vendor: requests_mock.Mocker, clock: FakeClock
) -> None:
    vendor.get(URL, [{"exc": requests.exceptions.ReadTimeout("read timed out")}, {"json": answer}])
    meter = BillingMeter(max_units=300)
    delivered = 0
    with pytest.raises(PatsnapBudgetError) as raised:
        for result in PatsnapHook(concurrency=1).lookup(AWARD, ids(300), meter=meter):
            delivered += len(result.patents)
    # batch 1 lost (100 maybe billed) then retried within budget (200); batch 2 answered (300);
    # batch 3 would make 400
    assert (delivered, meter.billed, meter.unknown) == (200, 200, 100)
    assert raised.value.not_fetched == 100
    assert business_calls(vendor) == 3


def test_batches_that_finish_while_the_caller_is_busy_come_as_one_group(vendor: requests_mock.Mocker) -> None:
    last_answered = threading.Event()
    calls = 0

    def counting_answer(request: Any, context: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 9:
            last_answered.set()
        return answer(request, context)

    vendor.get(URL, json=counting_answer)
    groups = PatsnapHook(concurrency=1).stream_batches(AWARD, PatentIds.of(ids(900)).batches(), max_group=16)
    first = next(groups)
    last_answered.wait()  # one worker: batches 2 to 8 were handed over before the 9th was sent
    rest = list(groups)
    assert len(rest) <= 2  # the batches that finished meanwhile in one group (the 9th maybe after): not 8
    every = [patent["pn"] for group in (first, *rest) for result in group for patent in result.patents]
    assert sorted(every) == ids(900)


def test_a_group_holds_at_most_max_group_batches(vendor: requests_mock.Mocker) -> None:
    vendor.get(URL, json=answer)
    batches = PatentIds.of(ids(2000)).batches()
    groups = list(PatsnapHook(concurrency=4).stream_batches(AWARD, batches, max_group=3))
    assert max(len(group) for group in groups) <= 3
    assert sum(len(group) for group in groups) == 20
