"""``SandboxApp`` driven directly (no sockets) on a clock that only ``advance()`` moves."""

from __future__ import annotations

import base64
import calendar
import json
import random
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_patsnap.sandbox import SandboxConfig
from airflow_provider_patsnap.sandbox.app import ApiRequest, Outcome, SandboxApp, json_reply
from airflow_provider_patsnap.sandbox.contract import (
    JOB_DONE,
    JOB_EXPORTING,
    JOB_WAITING,
    LOST_CREATE_FAULT,
    REPORT_CREATE_PATH,
    REPORT_STATUS_PATH,
    TOKEN_OUTAGE_FAULT,
)
from airflow_provider_patsnap.sandbox.data import patent_object
from airflow_provider_patsnap.sandbox.http import admin_reply
from airflow_provider_patsnap.sandbox.state import CpuMeter, SandboxClock

LEGAL = "/advanced-patent-data/legal-data"
START_WALL = 1_700_000_000.0


def make_app(**config: Any) -> SandboxApp:
    clock = SandboxClock(monotonic=lambda: 0.0, wall=lambda: START_WALL)
    return SandboxApp(SandboxConfig(**config), clock)


def body_of(outcome: Outcome) -> Any:
    assert outcome.reply is not None
    return json.loads(outcome.reply.body)


def issue_token(app: SandboxApp) -> dict[str, Any]:
    basic = base64.b64encode(f"{app.config.client_id}:{app.config.client_secret}".encode()).decode()
    request = ApiRequest(
        "POST", "/oauth/token", {}, {"authorization": f"Basic {basic}"}, b"grant_type=client_credentials"
    )
    return dict(body_of(app.handle(request)))


def business(
    app: SandboxApp,
    token: str,
    path: str,
    method: str = "GET",
    body: Any = None,
    *,
    arrival: float | None = None,
    **params: str,
) -> Outcome:
    headers = {"authorization": f"Bearer {token}", "host": "127.0.0.1:1"}
    raw = json.dumps(body).encode() if body is not None else b""
    params = {"apikey": app.config.client_id, **params}
    return app.handle(ApiRequest(method, path, params, headers, raw, arrival))


def create(app: SandboxApp, token: str, patent_number: str = "CN108977442B") -> Outcome:
    return business(
        app, token, REPORT_CREATE_PATH, "POST", {"patent_number": patent_number, "report_type": "pdf"}
    )


def status(app: SandboxApp, token: str, job_id: int) -> dict[str, Any]:
    return dict(body_of(business(app, token, REPORT_STATUS_PATH, job_id=str(job_id)))["data"])


def test_token_expires_when_the_clock_passes_its_ttl() -> None:
    app = make_app(token_ttl=600)
    token = issue_token(app)["token"]
    app.clock.advance(599)
    assert business(app, token, LEGAL, patent_number="CN1A").error_code == 0
    app.clock.advance(1)
    assert business(app, token, LEGAL, patent_number="CN1A").error_code == 67200003


def test_token_issued_at_follows_the_clock() -> None:
    app = make_app()
    first = int(issue_token(app)["issued_at"])
    app.clock.advance(3600)
    assert (first, int(issue_token(app)["issued_at"])) == (START_WALL * 1000, (START_WALL + 3600) * 1000)


def test_rate_limit_refills_as_the_clock_moves() -> None:
    app = make_app(qps=2, burst=2)
    token = issue_token(app)["token"]
    codes = [business(app, token, LEGAL, patent_number="CN1A").error_code for _ in range(3)]
    assert codes == [0, 0, 67200002]
    app.clock.advance(0.5)
    assert business(app, token, LEGAL, patent_number="CN1A").error_code == 0
    assert business(app, token, LEGAL, patent_number="CN1A").error_code == 67200002


@pytest.mark.parametrize(("qps", "burst"), [(0.5, None), (1, None), (5, 1), (100, 1), (100, None)])
def test_calls_spaced_exactly_at_the_qps_pass_despite_arrival_jitter(qps: float, burst: float | None) -> None:
    # A client that spaces its calls 1/qps apart: its timer, the network and the sandbox's threads move
    # each arrival by a few milliseconds either way, and no call may be refused for that.
    app = make_app(qps=qps, burst=burst)
    token = issue_token(app)["token"]
    rng = random.Random(f"{qps}/{burst}")
    codes = []
    for index in range(300):
        arrival = 1 + index / qps + rng.uniform(-0.004, 0.004)
        app.clock.advance(arrival - app.clock.now())
        codes.append(business(app, token, LEGAL, patent_number="CN1A").error_code)
    assert codes.count(67200002) == 0


@pytest.mark.parametrize(("qps", "burst"), [(1, None), (5, 1), (100, None)])
def test_calls_faster_than_the_qps_are_refused(qps: float, burst: float | None) -> None:
    app = make_app(qps=qps, burst=burst)
    token = issue_token(app)["token"]
    calls, span = int(30 * qps * 1.1), 30.0  # 10 % over the limit, evenly spaced, for 30 s
    codes = []
    for index in range(calls):
        app.clock.advance(1 + index * span / calls - app.clock.now())
        codes.append(business(app, token, LEGAL, patent_number="CN1A").error_code)
    # The bucket lets through what it holds at the start, its refill and its tolerance; no more.
    allowed = (burst or qps) + qps * span + qps * app.config.qps_tolerance
    assert codes.count(0) <= allowed
    assert codes.count(67200002) == calls - codes.count(0) > 0


def test_the_rate_limit_judges_a_call_at_its_arrival() -> None:
    # Under load a handler thread reaches the limiter late; the call arrived on time all the same.
    app = make_app(qps=1, burst=1, qps_tolerance=0)
    token = issue_token(app)["token"]
    app.clock.advance(1.6)  # the call that arrived at 1.0 is handled now
    assert business(app, token, LEGAL, arrival=1.0, patent_number="CN1A").error_code == 0
    app.clock.advance(0.5)  # the one that arrived at 2.0, now
    assert business(app, token, LEGAL, arrival=2.0, patent_number="CN1A").error_code == 0
    assert business(app, token, LEGAL, arrival=2.1, patent_number="CN1A").error_code == 67200002


def test_a_data_answer_is_its_fresh_objects_in_the_envelope_byte_for_byte() -> None:
    app = make_app()
    token = issue_token(app)["token"]
    values = [f"CN{110650000 + 7 * n}A" for n in range(98)] + ["NODATA-CN1B", "CN110650000A"]  # + a repeat
    for path, code, lang in ((LEGAL, "P026", "en"), ("/high-value-data/seic-classification", "P022", "cn")):
        params = {"patent_number": ",".join(values), **({"lang": lang} if code == "P022" else {})}
        fresh = [
            found
            for value in dict.fromkeys(values)
            if (found := patent_object(code, "patent_number", value, lang)) is not None  # type: ignore[arg-type]
        ]
        expected = json_reply(200, {"data": fresh, "status": True, "error_code": 0}).body
        first = business(app, token, path, **params)
        again = business(app, token, path, **params)  # from the cache this time
        assert first.reply is not None and again.reply is not None
        assert first.reply.body == again.reply.body == expected
        assert first.billed == again.billed == len(fresh)


def test_stats_carry_the_cpu_the_servers_threads_counted() -> None:
    app = make_app()
    readings = iter([10.0, 10.25, 3.0, 3.5])  # two threads' CPU clocks: 0.25 s, then 0.5 s of work
    app.cpu = CpuMeter(thread_clock=lambda: next(readings))
    app.cpu.stop(app.cpu.start())
    app.cpu.stop(app.cpu.start())
    stats = app.stats()
    assert stats["cpu_seconds"] == 0.75
    assert stats["process_cpu_seconds"] > 0 and stats["uptime_seconds"] >= 0
    assert json.loads(admin_reply(app, "GET", "/_sandbox/stats", {}).body)["cpu_seconds"] == 0.75


def test_report_job_moves_through_its_states_as_the_clock_moves() -> None:
    app = make_app(report_delay=300)
    token = issue_token(app)["token"]
    job_id = body_of(create(app, token))["data"]["job_id"]
    seen = [status(app, token, job_id)]
    for seconds in (34, 65, 1, 199, 1):  # waiting for the first 100 s, exporting until 300 s, then done
        app.clock.advance(seconds)
        seen.append(status(app, token, job_id))
    assert [data["job_status"] for data in seen] == [*[JOB_WAITING] * 3, *[JOB_EXPORTING] * 2, JOB_DONE]
    assert [data["queue_num"] for data in seen] == [3, 2, 1, 0, 0, 0]
    assert seen[-2]["download_url"] is None and seen[-1]["download_url"]


def done_link(app: SandboxApp, token: str) -> str:
    job_id = body_of(create(app, token))["data"]["job_id"]
    app.clock.advance(app.config.report_delay)
    return str(status(app, token, job_id)["download_url"])


def test_link_expires_when_the_clock_reaches_its_ttl() -> None:
    app = make_app(report_delay=10, link_ttl=3600)
    url = done_link(app, issue_token(app)["token"])
    target = url.split("127.0.0.1:0", 1)[1]  # the download port is 0: no server is bound
    app.clock.advance(3599)
    assert app.download("GET", target, {}).status == 200
    app.clock.advance(1)
    expired = app.download("GET", target, {})
    assert expired.status == 403 and b"Request has expired" in expired.body


def test_link_is_signed_with_the_sandbox_wall_clock() -> None:
    app = make_app(report_delay=10)
    app.clock.advance(86_400 - 10)
    url = done_link(app, issue_token(app)["token"])
    amz_date = parse_qs(urlsplit(url).query)["X-Amz-Date"][0]
    assert calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")) == START_WALL + 86_400


def test_lost_create_answer_creates_and_bills_the_job_but_sends_nothing() -> None:
    app = make_app()
    token = issue_token(app)["token"]
    app.lost_creates.arm(1)
    rejected = create(app, token, patent_number="CN305123456S")  # a design patent: no job, no loss
    assert rejected.error_code == 68300004 and rejected.reply is not None
    lost = create(app, token)
    assert (lost.reply, lost.fault, lost.billed, lost.ids) == (None, LOST_CREATE_FAULT, 1, ("CN108977442B",))
    answered = create(app, token)
    assert answered.reply is not None and answered.reply.status == 201 and answered.billed == 1
    stats = app.stats()
    assert (stats["reports_created"], stats["report_answers_lost"], stats["create_answers_to_lose"]) == (
        2,
        1,
        0,
    )


def test_a_token_outage_answers_503_then_issues_tokens_again() -> None:
    app = make_app()
    app.token_outages.arm(1)
    assert app.stats()["token_requests_to_fail"] == 1
    basic = base64.b64encode(f"{app.config.client_id}:{app.config.client_secret}".encode()).decode()
    request = ApiRequest(
        "POST",
        "/oauth/token",
        {},
        {"authorization": f"Basic {basic}", "content-type": "application/x-www-form-urlencoded"},
        b"grant_type=client_credentials",
    )
    down = app.handle(request)
    assert down.reply is not None and down.reply.status == 503 and down.fault == TOKEN_OUTAGE_FAULT
    assert down.category == "token"
    assert issue_token(app)["token"]  # up again
    assert app.stats()["token_requests_to_fail"] == 0


def test_only_a_successful_create_uses_up_a_lost_answer() -> None:
    app = make_app(qps=1, burst=1, fault_rate=1.0, faults=("busy",))
    token = issue_token(app)["token"]
    app.lost_creates.arm(1)
    assert create(app, token).error_code == 67200100  # faulted: no job
    app.faults.set_rate(0)
    assert create(app, token).error_code == 67200002  # rate-limited: no job
    app.clock.advance(1)
    assert business(app, token, LEGAL, patent_number="CN1A").reply is not None  # not a create
    app.clock.advance(1)
    assert create(app, token).reply is None
    assert app.stats()["reports_created"] == 1


def test_admin_advance_and_lose_create_answers() -> None:
    app = make_app(token_ttl=60)
    token = issue_token(app)["token"]
    reply = admin_reply(app, "POST", "/_sandbox/advance", {"seconds": "60"})
    assert (reply.status, json.loads(reply.body)) == (200, {"advanced": 60.0})
    assert business(app, token, LEGAL, patent_number="CN1A").error_code == 67200003
    reply = admin_reply(app, "POST", "/_sandbox/lose-create-answers", {"count": "2"})
    assert (reply.status, json.loads(reply.body)) == (200, {"create_answers_to_lose": 2})
    assert app.stats()["create_answers_to_lose"] == 2


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/_sandbox/advance", {"seconds": "-1"}),
        ("/_sandbox/advance", {"seconds": "nan"}),
        ("/_sandbox/advance", {}),
        ("/_sandbox/lose-create-answers", {"count": "-1"}),
        ("/_sandbox/lose-create-answers", {"count": "1.5"}),
    ],
)
def test_admin_rejects_bad_values(path: str, params: dict[str, str]) -> None:
    app = make_app()
    assert admin_reply(app, "POST", path, params).status == 400
    assert app.clock.now() == 0.0 and app.stats()["create_answers_to_lose"] == 0
