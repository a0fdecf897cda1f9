"""The sandbox over real HTTP on loopback: requests as the client, urllib3 or http.client where the test
is about a connection itself (keep-alive, a connection cut on stop)."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest
import requests
import urllib3

from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sandbox.contract import JOB_DONE, JOB_EXPORTING, JOB_FAILED, JOB_WAITING
from airflow_provider_patsnap.sandbox.data import (
    EndpointCode,
    number_for_patent_id,
    patent_id_for_number,
    patent_object,
)
from airflow_provider_patsnap.sandbox.http import ApiHandler
from airflow_provider_patsnap.sandbox.reports import FAILURE_CAUSE, report_bytes

REPO_ROOT = Path(__file__).resolve().parents[2]
SEIC = "/high-value-data/seic-classification"
AWARD = "/advanced-patent-data/award-data"
CUSTOMS = "/advanced-patent-data/customs-data"
LEGAL = "/advanced-patent-data/legal-data"
CREATE = "/patent-valuation-data/patent-report/task/create-no-logo"
STATUS = "/patent-valuation-data/patent-report/job_id/status"
ENDPOINTS: dict[str, EndpointCode] = {SEIC: "P022", AWARD: "P032", CUSTOMS: "P031", LEGAL: "P026"}


# ----------------------------------------------------------------------------------------- helpers


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def call(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> Reply:
    """One request on a connection of its own; a dropped connection raises ``requests.ConnectionError``."""
    with requests.Session() as session:
        session.trust_env = False  # no proxy, no .netrc: exactly this request goes to the loopback server
        response = session.request(
            method, url, headers=headers, data=body, timeout=timeout, allow_redirects=False
        )
        return Reply(response.status_code, response.headers, response.content)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request_token(
    sandbox: Sandbox, headers: dict[str, str], body: bytes = b"grant_type=client_credentials"
) -> Any:
    headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    return call(sandbox.base_url + "/oauth/token", "POST", headers, body)


def get_token(sandbox: Sandbox) -> str:
    reply = request_token(
        sandbox, {"Authorization": basic(sandbox.config.client_id, sandbox.config.client_secret)}
    )
    assert reply.status == 200, reply.body
    return str(reply.json["token"])


def api(
    sandbox: Sandbox,
    path: str,
    token: str | None,
    method: str = "GET",
    body: Any = None,
    timeout: float = 5.0,
    **params: str,
) -> Reply:
    params.setdefault("apikey", sandbox.config.client_id)
    query = urlencode({name: value for name, value in params.items() if value is not None})
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    return call(f"{sandbox.base_url}{path}?{query}", method, headers, data, timeout)


def assert_error(reply: Reply, code: int, http_status: int) -> dict[str, Any]:
    envelope = reply.json
    assert (reply.status, envelope["status"], envelope["error_code"]) == (http_status, False, code), envelope
    assert envelope["data"] is None and envelope["error_msg"]
    return dict(envelope)


def number_without_data(code: EndpointCode) -> str:
    """A normal-looking patent number that the hash rule gives no data for this endpoint."""
    for n in range(1000):
        value = f"CN{110650000 + n}A"
        if patent_object(code, "patent_number", value) is None:
            return value
    raise AssertionError("no patent without data in 1000 tries")


@pytest.fixture
def sandbox(patsnap_sandbox: Sandbox) -> Sandbox:
    """The plugin's sandbox with the default settings, fresh for each test."""
    return patsnap_sandbox


@pytest.fixture
def token(sandbox: Sandbox) -> str:
    return get_token(sandbox)


# ----------------------------------------------------------------------------------------- auth


def test_token_is_issued_with_the_documented_shape(sandbox: Sandbox) -> None:
    reply = request_token(sandbox, {"Authorization": basic("sandbox-client", "sandbox-secret")})
    body = reply.json
    assert reply.status == 200
    assert set(body) == {"token", "token_type", "expires_in", "status", "issued_at"}
    assert len(body["token"]) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", body["token"])
    assert (body["token_type"], body["expires_in"], body["status"]) == ("BearerToken", 1799, "approved")
    assert isinstance(body["issued_at"], str) and abs(int(body["issued_at"]) - time.time() * 1000) < 60_000


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": basic("sandbox-client", "wrong")},
        {"Authorization": basic("someone-else", "sandbox-secret")},
        {},
        {"Authorization": "Bearer sk-sandbox-key"},
    ],
    ids=["wrong-secret", "wrong-client", "no-auth", "not-basic"],
)
def test_token_rejects_bad_credentials(sandbox: Sandbox, headers: dict[str, str]) -> None:
    assert_error(request_token(sandbox, headers), 67200003, 401)


def test_token_rejects_wrong_grant_type(sandbox: Sandbox) -> None:
    reply = request_token(
        sandbox, {"Authorization": basic("sandbox-client", "sandbox-secret")}, b"grant_type=password"
    )
    assert "grant_type" in assert_error(reply, 68300004, 400)["error_msg"]


def test_business_call_auth_checks(sandbox: Sandbox, token: str) -> None:
    assert_error(api(sandbox, AWARD, token, patent_number="CN1A", apikey=""), 67200008, 401)
    assert_error(api(sandbox, AWARD, token, patent_number="CN1A", apikey="other-client"), 67200009, 401)
    assert_error(api(sandbox, AWARD, "not-a-token", patent_number="CN1A"), 67200003, 401)
    assert_error(api(sandbox, AWARD, None, patent_number="CN1A"), 67200003, 401)
    assert api(sandbox, AWARD, token, patent_number="CN1A").status == 200


def test_expire_tokens_invalidates_every_issued_token(sandbox: Sandbox) -> None:
    old = get_token(sandbox)
    assert api(sandbox, LEGAL, old, patent_number="CN1A").status == 200
    sandbox.expire_tokens()
    assert_error(api(sandbox, LEGAL, old, patent_number="CN1A"), 67200003, 401)
    assert api(sandbox, LEGAL, get_token(sandbox), patent_number="CN1A").status == 200


def test_token_expires_after_its_ttl(patsnap_sandbox_factory: Callable[..., Sandbox]) -> None:
    sandbox = patsnap_sandbox_factory(token_ttl=600)
    short = get_token(sandbox)
    assert api(sandbox, LEGAL, short, patent_number="CN1A").status == 200
    sandbox.advance(590)
    assert api(sandbox, LEGAL, short, patent_number="CN1A").status == 200
    sandbox.advance(10)
    assert_error(api(sandbox, LEGAL, short, patent_number="CN1A"), 67200003, 401)


def test_api_key_model_needs_the_key_as_apikey_too(sandbox: Sandbox) -> None:
    key = sandbox.config.api_key
    assert api(sandbox, CUSTOMS, key, patent_number="CN1A", apikey=key).status == 200
    assert_error(api(sandbox, CUSTOMS, key, patent_number="CN1A"), 67200009, 401)


# ----------------------------------------------------------------------------------------- data


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_data_endpoints_return_the_data_module_objects(sandbox: Sandbox, token: str, path: str) -> None:
    code = ENDPOINTS[path]
    missing = number_without_data(code)
    values = ["CN110650438A", "US11205304B2", "NODATA-1", missing, "JP4627367B2", "CN110650438A"]
    before = sandbox.stats()["billed_units"]
    reply = api(sandbox, path, token, patent_number=",".join(values))
    envelope = reply.json
    expected = [
        obj for value in dict.fromkeys(values) if (obj := patent_object(code, "patent_number", value))
    ]
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert envelope["status"] is True and envelope["error_code"] == 0
    assert envelope["data"] == expected
    returned = [item["pn"] for item in envelope["data"]]
    assert "NODATA-1" not in returned and missing not in returned
    assert returned.count("CN110650438A") == 1  # duplicates answered once
    assert sandbox.stats()["billed_units"] - before == len(expected)
    assert int(reply.headers["Content-Length"]) == len(reply.body)


def test_shapes_follow_the_vendor_pages(sandbox: Sandbox, token: str) -> None:
    numbers = ",".join(f"CN{110650400 + n}B" for n in range(30))
    seic = api(sandbox, SEIC, token, patent_number=numbers, lang="cn").json["data"][0]
    assert set(seic) == {"pn", "lang", "patent_id", "seic_classification"} and seic["lang"] == "cn"
    assert set(seic["seic_classification"][0]) == {"seic_lv1", "seic_lv2"}
    assert set(seic["seic_classification"][0]["seic_lv1"]) == {"seic_no", "seic_desc"}
    award = api(sandbox, AWARD, token, patent_number=numbers).json["data"][0]["patent_award_data"][0]
    assert set(award) == {"category", "award_name", "award_level", "award_session", "award_referrer"}
    customs = api(sandbox, CUSTOMS, token, patent_number=numbers).json["data"][0][
        "patent_customs_record_data"
    ][0]
    assert set(customs) == {
        "contact",
        "country",
        "product",
        "end_date",
        "start_date",
        "record_number",
        "record_status",
        "approval_opinion",
    }
    assert isinstance(customs["start_date"], int) and isinstance(customs["end_date"], int)
    legal = api(sandbox, LEGAL, token, patent_number=numbers).json["data"]
    assert all(
        set(item["patsnap_legal_data"]) == {"inpadoc_legal_data", "official_legal_data"} for item in legal
    )
    official = [event for item in legal for event in item["patsnap_legal_data"]["official_legal_data"]]
    assert official and all(
        set(event)
        == {"event_vol", "event_code", "event_date", "event_desc", "event_others", "event_legal_status"}
        for event in official
    )


def test_cn_only_fields_are_absent_for_other_jurisdictions(sandbox: Sandbox, token: str) -> None:
    numbers = ",".join(f"US{11205300 + n}B2" for n in range(20))
    awards = [
        a
        for item in api(sandbox, AWARD, token, patent_number=numbers).json["data"]
        for a in item["patent_award_data"]
    ]
    assert awards and all("award_level" not in a and "award_referrer" not in a for a in awards)
    legal = api(sandbox, LEGAL, token, patent_number=numbers).json["data"]
    official = [e for item in legal for e in item["patsnap_legal_data"]["official_legal_data"]]
    assert official and all("event_others" not in e and "event_legal_status" not in e for e in official)


def test_seic_language(sandbox: Sandbox, token: str) -> None:
    def descriptions(lang: str) -> list[str]:
        data = api(sandbox, SEIC, token, patent_number="CN110650438A", lang=lang).json["data"]
        return [entry["seic_lv2"]["seic_desc"] for entry in data[0]["seic_classification"]]

    assert all(re.search(r"[\u4e00-\u9fff]", text) for text in descriptions("cn"))
    assert all(text.isascii() for text in descriptions("en"))
    assert descriptions("en") == [
        e["seic_lv2"]["seic_desc"]
        for e in api(sandbox, SEIC, token, patent_number="CN110650438A").json["data"][0][
            "seic_classification"
        ]
    ]
    assert (
        "lang"
        in assert_error(api(sandbox, SEIC, token, patent_number="CN1A", lang="fr"), 68300004, 400)[
            "error_msg"
        ]
    )


def test_batch_and_id_validation(sandbox: Sandbox, token: str) -> None:
    ids = [f"CN{n}A" for n in range(101)]
    envelope = assert_error(api(sandbox, LEGAL, token, patent_number=",".join(ids)), 68300004, 400)
    assert envelope["error_msg"] == "Invalid parameter!"
    assert api(sandbox, LEGAL, token, patent_number=",".join(ids[:100])).status == 200
    for bad in ("CN1A, CN2A", "CN1A,,CN2A", "X" * 65, "CN1A,"):
        assert_error(api(sandbox, LEGAL, token, patent_number=bad), 68300004, 400)
    assert_error(api(sandbox, LEGAL, token), 68300004, 400)
    assert_error(api(sandbox, LEGAL, token, patent_id=""), 68300004, 400)
    assert api(sandbox, LEGAL, token, patent_number="X" * 64).status == 200


def test_patent_id_wins_when_both_kinds_are_given(sandbox: Sandbox, token: str) -> None:
    patent_id = patent_id_for_number("EP2170021B1")
    reply = api(sandbox, CUSTOMS, token, patent_id=patent_id, patent_number="NODATA")
    assert reply.json["data"] == [patent_object("P031", "patent_id", patent_id)]
    assert sandbox.requests[-1].ids == (patent_id,)


def test_unknown_path_and_wrong_method(sandbox: Sandbox, token: str) -> None:
    assert_error(api(sandbox, "/advanced-patent-data/nothing-here", token), 67200101, 404)
    reply = api(sandbox, AWARD, token, method="POST", body={}, patent_number="CN1A")
    assert_error(reply, 67200012, 405)
    assert reply.headers["Allow"] == "GET"


def test_errors_can_come_with_http_200(patsnap_sandbox_factory: Callable[..., Sandbox]) -> None:
    # Frozen clock: the bucket's one token is not refilled between the two calls, however slow they are.
    sandbox = patsnap_sandbox_factory(error_http_status=False, qps=1, burst=1, frozen_clock=True)
    token = get_token(sandbox)
    assert_error(api(sandbox, AWARD, token, patent_number="CN1A", apikey=""), 67200008, 200)
    reply = api(sandbox, AWARD, token, patent_number="CN1A")
    assert_error(reply, 67200002, 200)
    assert reply.headers.get("Retry-After") is None


def test_keep_alive_serves_many_requests_on_one_connection(sandbox: Sandbox, token: str) -> None:
    parts = urlsplit(sandbox.base_url)
    with urllib3.HTTPConnectionPool(
        parts.hostname, parts.port, maxsize=1, timeout=5.0, retries=False
    ) as pool:
        for value in ("CN1A", "CN2A", "CN3A"):
            response = pool.request(
                "GET",
                f"{AWARD}?apikey=sandbox-client&patent_number={value}",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status == 200 and json.loads(response.data)["status"] is True
            assert response.headers.get("Connection") != "close"
        assert pool.num_connections == 1  # all three went over the one connection


def test_answers_are_not_held_back_by_nagles_algorithm(sandbox: Sandbox, token: str) -> None:
    """Headers and body are two writes: with Nagle on, the body waits for the client's delayed ACK of
    the headers (about 40 ms a call on Linux), a latency the vendor does not have."""
    parts = urlsplit(sandbox.base_url)
    with urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=1, retries=False) as pool:
        response = pool.request(
            "GET",
            f"{AWARD}?apikey=sandbox-client&patent_number=CN1A",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 200
        served = list(sandbox._running().api._connections)  # the connection, still open (keep-alive)
        assert served and all(
            connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for connection in served
        )


# ----------------------------------------------------------------------------------------- limits and faults


def test_qps_limit_rejects_calls_over_the_bucket(patsnap_sandbox_factory: Callable[..., Sandbox]) -> None:
    # Frozen clock: no time passes for the bucket while the calls run, however slow the machine is.
    sandbox = patsnap_sandbox_factory(qps=5, burst=5, frozen_clock=True)
    token = get_token(sandbox)

    def award_call(_: int = 0) -> Reply:
        return api(sandbox, AWARD, token, patent_number="CN1A")

    with ThreadPoolExecutor(max_workers=30) as pool:
        replies = list(pool.map(award_call, range(30)))
    limited = [reply for reply in replies if reply.status == 429]
    # The bucket allows its burst plus qps per second of the run: here, no second passed.
    assert sum(reply.status == 200 for reply in replies) == 5 and len(limited) == 25
    assert limited and all(reply.headers["Retry-After"] == "1" for reply in limited)
    assert all(reply.json["error_code"] == 67200002 for reply in limited)
    assert sandbox.stats()["errors"]["67200002"] == len(limited)
    assert sum(record.error_code == 67200002 for record in sandbox.requests) == len(limited)
    sandbox.advance(1)  # one second refills qps tokens, up to the burst
    assert [award_call().status for _ in range(6)] == [200] * 5 + [429]


def test_latency_is_slept_per_call_so_calls_overlap(patsnap_sandbox_factory: Callable[..., Sandbox]) -> None:
    sandbox = patsnap_sandbox_factory(latency=0.3, latency_jitter=0.05)
    token = get_token(sandbox)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: api(sandbox, AWARD, token, patent_number="CN1A"), range(8)))
    elapsed = time.monotonic() - started
    assert all(reply.status == 200 for reply in replies)
    assert elapsed >= 0.3
    assert sandbox.stats()["max_in_flight"] >= 4  # calls overlapped: not one after another


@pytest.mark.parametrize(
    ("fault", "http_status", "code"),
    [("qps", 429, 67200002), ("busy", 503, 67200100), ("service", 500, 68300008)],
)
def test_envelope_faults(
    patsnap_sandbox_factory: Callable[..., Sandbox], fault: str, http_status: int, code: int
) -> None:
    sandbox = patsnap_sandbox_factory(fault_rate=1.0, faults=(fault,))
    token = get_token(sandbox)  # token calls are never faulted
    assert_error(api(sandbox, AWARD, token, patent_number="CN1A"), code, http_status)
    stats = sandbox.stats()
    assert stats["faults"] == {fault: 1} and stats["billed_units"] == 0
    assert sandbox.requests[-1].fault == fault


@pytest.mark.parametrize(("fault", "http_status"), [("http500", 500), ("http502", 502)])
def test_http_faults_have_non_json_bodies(
    patsnap_sandbox_factory: Callable[..., Sandbox], fault: str, http_status: int
) -> None:
    sandbox = patsnap_sandbox_factory(fault_rate=1.0, faults=(fault,))
    reply = api(sandbox, LEGAL, get_token(sandbox), patent_number="CN1A")
    assert reply.status == http_status and reply.headers["Content-Type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.body)
    assert sandbox.requests[-1].http_status == http_status


def test_drop_fault_closes_the_connection_without_an_answer(
    patsnap_sandbox_factory: Callable[..., Sandbox],
) -> None:
    sandbox = patsnap_sandbox_factory(fault_rate=1.0, faults=("drop",))
    token = get_token(sandbox)
    with pytest.raises(requests.ConnectionError):
        api(sandbox, LEGAL, token, patent_number="CN1A")
    record = sandbox.requests[-1]
    assert (record.fault, record.http_status) == ("drop", 0)


def test_slow_fault_answers_late_but_normally(patsnap_sandbox_factory: Callable[..., Sandbox]) -> None:
    sandbox = patsnap_sandbox_factory(fault_rate=1.0, faults=("slow",), slow_seconds=0.4)
    token = get_token(sandbox)
    with pytest.raises(requests.ReadTimeout):
        api(sandbox, LEGAL, token, patent_number="CN1A", timeout=0.1)
    started = time.monotonic()
    reply = api(sandbox, LEGAL, token, patent_number="CN1A")
    assert time.monotonic() - started >= 0.4
    expected = patent_object("P026", "patent_number", "CN1A")
    assert reply.status == 200 and reply.json["data"] == ([expected] if expected else [])


def test_faults_are_reproducible_with_a_seed_and_adjustable_at_runtime(
    patsnap_sandbox_factory: Callable[..., Sandbox],
) -> None:
    def sequence(seed: int) -> list[int]:
        sandbox = patsnap_sandbox_factory(fault_rate=0.5, faults=("busy", "service"), seed=seed)
        token = get_token(sandbox)
        return [api(sandbox, AWARD, token, patent_number="CN1A").json["error_code"] for _ in range(12)]

    first = sequence(7)
    assert first == sequence(7) and len(set(first)) > 1
    sandbox = patsnap_sandbox_factory(fault_rate=1.0, faults=("busy",))
    token = get_token(sandbox)
    assert api(sandbox, AWARD, token, patent_number="CN1A").status == 503
    sandbox.set_fault_rate(0.0)
    assert api(sandbox, AWARD, token, patent_number="CN1A").status == 200


# ----------------------------------------------------------------------------------------- records and admin


def test_request_records(sandbox: Sandbox, token: str) -> None:
    sandbox.clear_requests()
    api(sandbox, AWARD, token, patent_number="CN1A,CN2A")
    api(sandbox, AWARD, None, patent_number="CN3A")
    first, second = sandbox.requests
    assert first.arrival <= second.arrival and abs(first.wall - time.time()) < 60
    assert (first.method, first.path, first.ids, first.http_status, first.error_code) == (
        "GET",
        AWARD,
        ("CN1A", "CN2A"),
        200,
        0,
    )
    assert first.params == {"apikey": "***", "patent_number": "CN1A,CN2A"}
    assert first.authorization_present and not second.authorization_present
    assert second.error_code == 67200003 and second.fault is None
    with pytest.raises(AttributeError):
        first.path = "/changed"  # type: ignore[misc]


def test_admin_endpoints(patsnap_sandbox_factory: Callable[..., Sandbox]) -> None:
    sandbox = patsnap_sandbox_factory(faults=("busy",))
    token = get_token(sandbox)
    api(sandbox, AWARD, token, patent_number="CN1A")
    stats = call(sandbox.base_url + "/_sandbox/stats").json
    assert (stats["requests"], stats["business_calls"], stats["token_calls"]) == (2, 1, 1)
    records = call(sandbox.base_url + "/_sandbox/requests?since=1").json
    assert [record["path"] for record in records] == [AWARD] and records[0]["params"]["apikey"] == "***"
    assert call(sandbox.base_url + "/_sandbox/fault-rate?rate=1", "POST").json == {"fault_rate": 1.0}
    assert call(sandbox.base_url + "/_sandbox/fault-rate?rate=2", "POST").status == 400
    assert_error(api(sandbox, AWARD, token, patent_number="CN1A"), 67200100, 503)
    call(sandbox.base_url + "/_sandbox/fault-rate?rate=0", "POST")
    assert call(sandbox.base_url + "/_sandbox/expire-tokens", "POST").json == {"expired": 1}
    assert_error(api(sandbox, AWARD, token, patent_number="CN1A"), 67200003, 401)
    assert len(sandbox.requests) == 4  # admin calls are not recorded
    assert sandbox.stats()["business_calls"] == 3


def test_stats_count_the_cpu_the_sandboxs_threads_spent(sandbox: Sandbox, token: str) -> None:
    before = sandbox.stats()["cpu_seconds"]
    numbers = ",".join(f"CN{120000000 + n}A" for n in range(100))
    for _ in range(3):
        assert api(sandbox, LEGAL, token, patent_number=numbers).status == 200
    stats = call(sandbox.base_url + "/_sandbox/stats").json
    # Its own threads' CPU, in this test's process: some for 300 patents, never more than the
    # whole process has used (pytest's own threads included).
    assert stats["cpu_seconds"] - before > 0
    assert stats["cpu_seconds"] <= stats["process_cpu_seconds"]
    assert stats["uptime_seconds"] > 0


# ----------------------------------------------------------------------------------------- reports


@pytest.fixture
def report_sandbox(patsnap_sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A minute of report_delay on a frozen clock: no job gets past "waiting" on its own however loaded
    the machine is; only advance() (run_job) moves it on."""
    return patsnap_sandbox_factory(report_delay=60, frozen_clock=True)


@pytest.fixture
def report_token(report_sandbox: Sandbox) -> str:
    return get_token(report_sandbox)


def create_report(sandbox: Sandbox, token: str, **body: str) -> Reply:
    return api(sandbox, CREATE, token, method="POST", body=body)


def run_job(sandbox: Sandbox, token: str, job_id: int) -> list[dict[str, Any]]:
    """Poll a job until it ends, moving the sandbox clock a third of report_delay between polls."""
    seen = []
    for _ in range(10):
        data = api(sandbox, STATUS, token, job_id=str(job_id)).json["data"]
        seen.append(data)
        if data["job_status"] in (JOB_DONE, JOB_FAILED):
            return seen
        sandbox.advance(sandbox.config.report_delay / 3)
    raise AssertionError(f"job {job_id} did not finish: {seen[-1]}")


def test_job_id_is_a_bare_19_digit_number_that_floats_corrupt(
    report_sandbox: Sandbox, report_token: str
) -> None:
    reply = create_report(report_sandbox, report_token, patent_number="CN108977442B", report_type="pdf")
    assert reply.status == 201
    raw = re.search(rb'"job_id":\s*(\d+)', reply.body)
    assert raw is not None and len(raw.group(1)) == 19
    exact = int(raw.group(1))
    parsed = reply.json["data"]["job_id"]
    assert isinstance(parsed, int) and parsed == exact and exact > 2**53
    assert int(float(exact)) != exact


def test_report_lifecycle_and_download(report_sandbox: Sandbox, report_token: str) -> None:
    job_id = create_report(
        report_sandbox, report_token, patent_number="CN108977442B", report_type="pdf"
    ).json["data"]["job_id"]
    seen = run_job(report_sandbox, report_token, job_id)
    statuses = [data["job_status"] for data in seen]
    assert statuses[0] == JOB_WAITING and seen[0]["queue_num"] > 0 and seen[0]["download_url"] is None
    assert JOB_EXPORTING in statuses and statuses[-1] == JOB_DONE and statuses == sorted(statuses)
    assert all(data["job_id"] == job_id for data in seen)
    url = seen[-1]["download_url"]
    assert (
        url.startswith(report_sandbox.download_base_url + "/reports/")
        and report_sandbox.download_base_url != report_sandbox.base_url
    )
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == [str(7 * 24 * 3600)] and re.fullmatch(
        r"[0-9a-f]{64}", query["X-Amz-Signature"][0]
    )
    assert query["response-content-disposition"] == [
        'attachment; filename="patent_value_report_CN108977442B.pdf"'
    ]
    download = call(url)
    assert download.status == 200 and download.headers["Content-Type"] == "application/pdf"
    assert download.body == report_bytes(str(job_id), "CN108977442B", "pdf")
    assert (
        download.headers["Content-Disposition"]
        == 'attachment; filename="patent_value_report_CN108977442B.pdf"'
    )
    assert int(download.headers["Content-Length"]) == len(download.body)


def test_word_report_is_a_real_docx(report_sandbox: Sandbox, report_token: str) -> None:
    patent_id = patent_id_for_number("CN110650438A")
    job_id = create_report(report_sandbox, report_token, patent_id=patent_id, report_type="word").json[
        "data"
    ]["job_id"]
    url = run_job(report_sandbox, report_token, job_id)[-1]["download_url"]
    pn = number_for_patent_id(patent_id)
    assert unquote(urlsplit(url).path).endswith(f"patent_value_report_{pn}.docx")
    body = call(url).body
    assert body == report_bytes(str(job_id), pn, "word")
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert set(archive.namelist()) == {"[Content_Types].xml", "_rels/.rels", "word/document.xml"}
        document = archive.read("word/document.xml").decode()
    assert pn in document and str(job_id) in document


def test_failing_report_ends_failed(report_sandbox: Sandbox, report_token: str) -> None:
    job_id = create_report(report_sandbox, report_token, patent_number="CNFAIL123B", report_type="pdf").json[
        "data"
    ]["job_id"]
    final = run_job(report_sandbox, report_token, job_id)[-1]
    assert (final["job_status"], final["abnormal_cause"]) == (JOB_FAILED, FAILURE_CAUSE)
    assert final["download_url"] is None


def test_report_rejections(report_sandbox: Sandbox, report_token: str) -> None:
    design = assert_error(
        create_report(report_sandbox, report_token, patent_number="CN305123456S", report_type="pdf"),
        68300004,
        400,
    )
    assert design["error_msg"] == "unauthorized patents and design patents are not supported"
    assert_error(
        create_report(report_sandbox, report_token, patent_number="USD912345S1", report_type="pdf"),
        68300004,
        400,
    )
    assert_error(
        create_report(report_sandbox, report_token, patent_id="DESIGN-1", report_type="pdf"), 68300004, 400
    )
    bad_type = assert_error(
        create_report(report_sandbox, report_token, patent_number="CN1B", report_type="xls"), 68300004, 400
    )
    assert "report_type" in bad_type["error_msg"] and "xls" in bad_type["error_msg"]
    assert_error(create_report(report_sandbox, report_token, report_type="pdf"), 68300004, 400)
    invalid_json = call(
        f"{report_sandbox.base_url}{CREATE}?apikey=sandbox-client",
        "POST",
        {"Authorization": f"Bearer {report_token}"},
        b"{not json",
    )
    assert_error(invalid_json, 68300007, 400)
    assert_error(
        api(report_sandbox, STATUS, report_token, job_id="1579434053399036160"), 68300004, 400
    )  # a float-mangled id
    assert_error(api(report_sandbox, STATUS, report_token, job_id="1.579434053399036e+18"), 68300004, 400)
    assert_error(
        api(report_sandbox, STATUS, report_token, job_id="1579434053399036001", apikey=""), 67200008, 401
    )


def test_both_kinds_in_report_body_use_patent_id(report_sandbox: Sandbox, report_token: str) -> None:
    patent_id = patent_id_for_number("CN108977442B")
    reply = create_report(
        report_sandbox, report_token, patent_id=patent_id, patent_number="CN305123456S", report_type="pdf"
    )
    assert reply.status == 201
    assert report_sandbox.requests[-1].ids == (patent_id,)


def test_lost_create_answer_bills_a_job_the_client_never_hears_of(
    patsnap_sandbox_factory: Callable[..., Sandbox],
) -> None:
    sandbox = patsnap_sandbox_factory()
    token = get_token(sandbox)
    first = create_report(sandbox, token, patent_number="CN108977442B", report_type="pdf")
    sandbox.lose_create_answers(1)
    with pytest.raises(requests.ConnectionError):
        create_report(sandbox, token, patent_number="CN110650438A", report_type="word")
    last = create_report(sandbox, token, patent_number="CN108977442B", report_type="pdf")
    first_id, last_id = first.json["data"]["job_id"], last.json["data"]["job_id"]
    # The lost job is real: the one id between the two answered ones is a job being prepared.
    between = [api(sandbox, STATUS, token, job_id=str(n)) for n in range(first_id + 1, last_id)]
    assert [reply.status for reply in between] == [200]
    stats = sandbox.stats()
    assert (stats["reports_created"], stats["report_answers_lost"], stats["billed_units"]) == (3, 1, 3)
    assert sandbox.report_jobs_created == 3 and stats["faults"] == {"lost_create": 1}
    lost = sandbox.requests[-3]
    assert (lost.path, lost.http_status, lost.fault, lost.ids) == (
        CREATE,
        0,
        "lost_create",
        ("CN110650438A",),
    )


def test_admin_endpoints_for_the_clock_and_lost_creates(
    patsnap_sandbox_factory: Callable[..., Sandbox],
) -> None:
    sandbox = patsnap_sandbox_factory(token_ttl=600)
    token = get_token(sandbox)
    assert call(sandbox.base_url + "/_sandbox/advance?seconds=600", "POST").json == {"advanced": 600.0}
    assert_error(api(sandbox, LEGAL, token, patent_number="CN1A"), 67200003, 401)
    assert call(sandbox.base_url + "/_sandbox/advance?seconds=-1", "POST").status == 400
    armed = call(sandbox.base_url + "/_sandbox/lose-create-answers?count=1", "POST")
    assert armed.json == {"create_answers_to_lose": 1}
    assert call(sandbox.base_url + "/_sandbox/stats").json["create_answers_to_lose"] == 1
    with pytest.raises(requests.ConnectionError):
        create_report(sandbox, get_token(sandbox), patent_number="CN1B", report_type="pdf")
    assert call(sandbox.base_url + "/_sandbox/stats").json["report_answers_lost"] == 1


# ----------------------------------------------------------------------------------------- download host


@pytest.fixture
def download_url(report_sandbox: Sandbox, report_token: str) -> str:
    job_id = create_report(
        report_sandbox, report_token, patent_number="CN108977442B", report_type="pdf"
    ).json["data"]["job_id"]
    return str(run_job(report_sandbox, report_token, job_id)[-1]["download_url"])


def test_download_refuses_patsnap_credentials(download_url: str, report_token: str) -> None:
    for reply in (
        call(download_url, headers={"Authorization": f"Bearer {report_token}"}),
        call(download_url + "&apikey=sandbox-client"),
    ):
        assert reply.status == 400
        assert b"<Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message>" in reply.body
    assert call(download_url).status == 200


def test_download_rejects_a_tampered_link(download_url: str) -> None:
    tampered = re.sub(r"X-Amz-Signature=[0-9a-f]", "X-Amz-Signature=z", download_url)
    reply = call(tampered)
    assert reply.status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in reply.body
    assert call(download_url.replace("/reports/", "/reports/x")).status == 403


def test_download_link_expires(patsnap_sandbox_factory: Callable[..., Sandbox]) -> None:
    sandbox = patsnap_sandbox_factory(report_delay=0.0, link_ttl=3600)
    token = get_token(sandbox)
    job_id = create_report(sandbox, token, patent_number="CN108977442B", report_type="pdf").json["data"][
        "job_id"
    ]
    url = run_job(sandbox, token, job_id)[-1]["download_url"]
    assert call(url).status == 200
    sandbox.advance(3590)
    assert call(url).status == 200
    sandbox.advance(10)
    reply = call(url)
    assert reply.status == 403
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in reply.body


def test_traversal_value_gets_a_hostile_file_name(report_sandbox: Sandbox, report_token: str) -> None:
    job_id = create_report(
        report_sandbox, report_token, patent_number="CNTRAVERSAL1B", report_type="pdf"
    ).json["data"]["job_id"]
    url = run_job(report_sandbox, report_token, job_id)[-1]["download_url"]
    disposition = parse_qs(urlsplit(url).query)["response-content-disposition"][0]
    assert disposition == 'attachment; filename="../../../etc/passwd_CNTRAVERSAL1B.pdf"'
    reply = call(url)
    assert reply.status == 200 and reply.headers["Content-Disposition"] == disposition


# ----------------------------------------------------------------------------------------- CLI and packaging


def _python_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PATSNAP_SANDBOX_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def test_cli_prints_the_listening_line_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_patsnap.sandbox", "--port", "0", "--qps", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_python_env(),
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(
            r"PatSnap sandbox listening on (http://127\.0\.0\.1:(\d+)) \(downloads on http://127\.0\.0\.1:(\d+)\)\n",
            line,
        )
        assert match, line
        connection_line = process.stdout.readline()
        name, _, value = connection_line.partition("=")
        assert name == "export AIRFLOW_CONN_PATSNAP_DEFAULT"
        connection = json.loads(shlex.split(value)[0])
        # Copied as it is, the connection calls at the sandbox's limit.
        assert connection == {
            "conn_type": "patsnap",
            "host": match.group(1),
            "login": "sandbox-client",
            "password": "sandbox-secret",
            "extra": {"qps": 3},
        }
        assert call(match.group(1) + "/_sandbox/stats").json["requests"] == 0
        process.terminate()
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_connection_json(patsnap_sandbox_factory: Callable[..., Sandbox]) -> None:
    sandbox = patsnap_sandbox_factory()
    secret = json.loads(sandbox.connection_json(qps=3))
    assert secret == {
        "conn_type": "patsnap",
        "host": sandbox.base_url,
        "login": "sandbox-client",
        "password": "sandbox-secret",
        "extra": {"qps": 3},
    }
    key = json.loads(sandbox.connection_json(auth="key"))
    assert key == {
        "conn_type": "patsnap",
        "host": sandbox.base_url,
        "password": "sk-sandbox-key",
        "extra": {},
    }


def test_sandbox_imports_without_airflow_or_requests() -> None:
    code = (
        "import sys, airflow_provider_patsnap.sandbox, airflow_provider_patsnap.sandbox.__main__;"
        "heavy = sorted(m for m in ('airflow', 'requests', 'urllib3') if m in sys.modules);"
        "print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_python_env(),
        cwd=REPO_ROOT,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_stop_cuts_open_keep_alive_connections_without_waiting_for_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Sandbox's own lifecycle (start, stop twice, no address after), so not the plugin's factory. Its
    # handler would wait for an idle keep-alive connection's next request forever (no idle timeout):
    # a stop() that waited for it would never return (pytest-timeout fails the test), so no bound on
    # elapsed time is needed, and a connection left open would leave the recv() below blocked.
    monkeypatch.setattr(ApiHandler, "timeout", None)
    sandbox = Sandbox().start()
    parts = urlsplit(sandbox.base_url)
    # http.client, not requests: the test needs the socket of the idle keep-alive connection.
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    connection.request("GET", "/_sandbox/stats")
    connection.getresponse().read()
    sandbox.stop()
    sandbox.stop()
    assert connection.sock is not None and connection.sock.recv(1) == b""  # the sandbox hung up
    connection.close()
    with pytest.raises(RuntimeError):
        _ = sandbox.base_url
