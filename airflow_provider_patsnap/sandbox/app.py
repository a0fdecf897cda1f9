"""``SandboxApp``: all sandbox behaviour, socket-free. It turns an :class:`ApiRequest` into an
:class:`Outcome`; ``http.py`` only moves bytes, so unit tests drive the app directly.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_patsnap.sandbox.config import SandboxConfig
from airflow_provider_patsnap.sandbox.contract import (
    DATA_PATHS,
    ERROR_MESSAGES,
    FAULT_ERROR_CODES,
    HTTP_STATUS_FOR_CODE,
    JSON_CONTENT_TYPE,
    LOST_CREATE_FAULT,
    MAX_BATCH,
    REPORT_CREATE_PATH,
    ROUTE_METHODS,
    TOKEN_CREDENTIALS_MESSAGE,
    TOKEN_OUTAGE_FAULT,
    TOKEN_PATH,
)
from airflow_provider_patsnap.sandbox.data import (
    ID_KINDS,
    LANGS,
    EndpointCode,
    IdKind,
    Lang,
    cached_patent_object,
)
from airflow_provider_patsnap.sandbox.reports import HttpReply, InvalidReportRequest, ReportJobs, validate_id
from airflow_provider_patsnap.sandbox.state import (
    Countdown,
    CpuMeter,
    FaultInjector,
    Ledger,
    LostCreateAnswers,
    SandboxClock,
    TokenBucket,
    TokenStore,
)


class ApiError(Exception):
    """An error answered with the vendor's envelope."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message or ERROR_MESSAGES[code]


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    arrival: float | None = None  # the sandbox clock when the request line was read; None = now


@dataclass(frozen=True)
class Outcome:
    reply: HttpReply | None  # None = drop the connection without answering
    category: str = "other"  # "business", "token" or "other"
    error_code: int = 0
    fault: str | None = None
    ids: tuple[str, ...] = ()
    billed: int = 0


# Made once rather than by each json.dumps call; every payload is a tree the sandbox built, so the
# encoder's check for reference cycles (a dict of ids per container) would be work for nothing.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def json_reply(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> HttpReply:
    # One encode of the whole answer. Joining pieces encoded per patent (to cache them encoded) saved
    # no CPU, and with hundreds of handler threads each allocating many mid-sized pieces, the
    # allocator's per-thread arenas more than doubled the sandbox's resident memory.
    body = _encode(payload).encode("utf-8")
    return HttpReply(status, body, JSON_CONTENT_TYPE, headers)


def html_reply(status: int, reason: str) -> HttpReply:
    # What a gateway in front of the API sends when the service behind it fails: not JSON at all.
    body = (
        f"<html><head><title>{status} {reason}</title></head><body>"
        f"<center><h1>{status} {reason}</h1></center><hr><center>nginx</center></body></html>"
    )
    return HttpReply(status, body.encode("ascii"), "text/html")


def url_host(host: str) -> str:
    """The host part of a URL that reaches a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _equal_secrets(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _bearer(header: str | None) -> str | None:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _requested_values(params: Mapping[str, str]) -> tuple[IdKind, list[str]] | None:
    for kind in ID_KINDS:  # patent_id wins when both are given
        raw = params.get(kind)
        if raw:
            return kind, raw.split(",")
    return None


def _requested_report_values(body: bytes) -> tuple[str, ...]:
    try:
        parsed = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ()
    if not isinstance(parsed, dict):
        return ()
    for kind in ID_KINDS:
        if isinstance(parsed.get(kind), str) and parsed[kind]:
            return (parsed[kind],)
    return ()


# ----------------------------------------------------------------------------------------- the app


class SandboxApp:
    """All sandbox state and behaviour, independent of sockets."""

    def __init__(self, config: SandboxConfig, clock: SandboxClock | None = None) -> None:
        self.config = config
        self.clock = clock or SandboxClock()
        self.ledger = Ledger()
        self.tokens = TokenStore(config.token_ttl, self.clock.now)
        burst = config.burst if config.burst is not None else config.qps
        self.bucket = (
            TokenBucket(config.qps, burst, self.clock.now, tolerance=config.qps_tolerance)
            if config.qps > 0
            else None
        )
        self.faults = FaultInjector(config.fault_rate, config.faults, config.seed)
        self.lost_creates = LostCreateAnswers()
        self.token_outages = Countdown()  # token requests still to be answered 503 by a gateway
        self.jobs = ReportJobs(
            report_delay=config.report_delay,
            link_ttl=config.link_ttl,
            clock=self.clock.now,
            wall_clock=self.clock.wall,
        )
        self.download_port = 0  # set once the download server is bound
        self.cpu = CpuMeter()  # fed by the servers' threads (http.py)
        self._started = time.monotonic()  # real time: advance() must not make the sandbox look idle
        self._latency_rng = random.Random(f"latency:{config.seed}")
        self._latency_lock = threading.Lock()

    # ------------------------------------------------------------------------------------- routing

    def handle(self, request: ApiRequest) -> Outcome:
        allowed = ROUTE_METHODS.get(request.path)
        if allowed is None:
            return self.error(67200101)
        if request.method != allowed:
            return self.error(67200012, headers=(("Allow", allowed),))
        if request.path == TOKEN_PATH:
            if self.token_outages.take():  # the token service is down behind its gateway
                return Outcome(html_reply(503, "Service Unavailable"), "token", fault=TOKEN_OUTAGE_FAULT)
            return replace(self._issue_token(request), category="token")
        self.ledger.enter_business()
        try:
            outcome = self._business(request)
        finally:
            self.ledger.leave_business()
        return replace(outcome, category="business", ids=self._requested_ids(request))

    def _business(self, request: ApiRequest) -> Outcome:
        # Order matters and is documented: QPS, then latency, then faults, then auth, then the endpoint.
        if self.bucket is not None and not self.bucket.take(request.arrival):
            return self.error(67200002)
        self._sleep_latency()
        fault = self.faults.draw()
        if fault == "slow":
            time.sleep(self.config.slow_seconds)
        elif fault is not None:
            return replace(self._fault(fault), fault=fault)
        try:
            self._authenticate(request)
            outcome = self._endpoint(request)
        except ApiError as error:
            outcome = self.error(error.code, error.message)
        return replace(outcome, fault=outcome.fault or fault)

    def _endpoint(self, request: ApiRequest) -> Outcome:
        code = DATA_PATHS.get(request.path)
        if code is not None:
            return self._data(code, request.params)
        if request.path == REPORT_CREATE_PATH:
            return self._create_report(request.body)
        return self._report_status(request)

    def _requested_ids(self, request: ApiRequest) -> tuple[str, ...]:
        if request.path == REPORT_CREATE_PATH:
            return _requested_report_values(request.body)
        requested = _requested_values(request.params) if request.path in DATA_PATHS else None
        return tuple(requested[1]) if requested else ()

    # ------------------------------------------------------------------------------------- replies

    def error(
        self, code: int, message: str | None = None, headers: tuple[tuple[str, str], ...] = ()
    ) -> Outcome:
        status = 200
        if self.config.error_http_status:
            status = HTTP_STATUS_FOR_CODE.get(code, 400)
            if code == 67200002:
                headers = (*headers, ("Retry-After", "1"))
        envelope = {
            "data": None,
            "status": False,
            "error_code": code,
            "error_msg": message or ERROR_MESSAGES[code],
        }
        return Outcome(json_reply(status, envelope, headers), error_code=code)

    @staticmethod
    def success(data: Any, status: int = 200, billed: int = 0) -> Outcome:
        return Outcome(json_reply(status, {"data": data, "status": True, "error_code": 0}), billed=billed)

    def _fault(self, fault: str) -> Outcome:
        if fault in FAULT_ERROR_CODES:
            return self.error(FAULT_ERROR_CODES[fault])
        if fault == "http500":
            return Outcome(html_reply(500, "Internal Server Error"))
        if fault == "http502":
            return Outcome(html_reply(502, "Bad Gateway"))
        return Outcome(None)  # "drop"

    def _sleep_latency(self) -> None:
        delay = self.config.latency
        if self.config.latency_jitter > 0:
            with self._latency_lock:
                delay += self._latency_rng.uniform(0, self.config.latency_jitter)
        if delay > 0:
            time.sleep(delay)  # in this handler thread only, so concurrent calls overlap

    # ------------------------------------------------------------------------------------- auth

    def _issue_token(self, request: ApiRequest) -> Outcome:
        credentials = _basic_credentials(request.headers.get("authorization"))
        config = self.config
        if credentials is None or not (
            _equal_secrets(credentials[0], config.client_id)
            and _equal_secrets(credentials[1], config.client_secret)
        ):
            return self.error(67200003, TOKEN_CREDENTIALS_MESSAGE)
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            return self.error(
                68300004,
                "Invalid parameter! grant_type must be client_credentials "
                "(in an application/x-www-form-urlencoded body)",
            )
        token = self.tokens.issue(config.client_id)
        self.ledger.count("tokens_issued")
        ttl = config.token_ttl
        payload = {
            "token": token,
            "token_type": "BearerToken",
            "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            "status": "approved",
            "issued_at": str(int(self.clock.wall() * 1000)),
        }
        return Outcome(json_reply(200, payload))

    def _authenticate(self, request: ApiRequest) -> None:
        apikey = request.params.get("apikey", "")
        if not apikey:
            raise ApiError(67200008)
        bearer = _bearer(request.headers.get("authorization"))
        if bearer is not None and _equal_secrets(bearer, self.config.api_key):  # the sk- key model
            if not _equal_secrets(apikey, self.config.api_key):
                raise ApiError(67200009)
            return
        client_id = self.tokens.client_for(bearer) if bearer else None
        if client_id is None:
            raise ApiError(67200003)
        if not _equal_secrets(apikey, client_id):
            raise ApiError(67200009)

    # ------------------------------------------------------------------------------------- endpoints

    def _data(self, code: EndpointCode, params: Mapping[str, str]) -> Outcome:
        requested = _requested_values(params)
        if requested is None:
            raise ApiError(68300004, "Invalid parameter! patent_id or patent_number is required")
        kind, values = requested
        if len(values) > MAX_BATCH:
            raise ApiError(68300004)
        try:
            for value in values:
                validate_id(kind, value)
        except InvalidReportRequest as error:
            raise ApiError(68300004, str(error)) from None
        lang: Lang = "en"
        if code == "P022":
            raw_lang = params.get("lang") or "en"
            if raw_lang not in LANGS:
                raise ApiError(68300004, f"Invalid parameter! lang must be 'cn' or 'en', got {raw_lang!r}")
            lang = "cn" if raw_lang == "cn" else "en"
        objects = (cached_patent_object(code, kind, value, lang) for value in dict.fromkeys(values))
        data = [found for found in objects if found is not None]
        return self.success(data, billed=len(data))

    def _create_report(self, body: bytes) -> Outcome:
        try:
            parsed = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(68300007, "Bad request! the body must be a JSON object") from None
        try:
            job = self.jobs.create(parsed)
        except InvalidReportRequest as error:
            raise ApiError(68300004, str(error)) from None
        self.ledger.count("reports_created")
        if self.lost_creates.take():
            # The job exists and is billed, but the client never learns its id: the "paid twice" risk.
            self.ledger.count("report_answers_lost")
            return Outcome(None, fault=LOST_CREATE_FAULT, billed=1)
        return self.success({"job_id": job.job_id}, status=201, billed=1)

    def _report_status(self, request: ApiRequest) -> Outcome:
        job_id = request.params.get("job_id", "")
        if not job_id:
            raise ApiError(68300004, "Invalid parameter! job_id is required")
        try:
            data = self.jobs.status(job_id, self.download_base_url(request.headers.get("host")))
        except InvalidReportRequest as error:
            raise ApiError(68300004, str(error)) from None
        return self.success(data)

    def download_base_url(self, host_header: str | None = None) -> str:
        """The download host as the client sees it: the host it used for the API, the download port."""
        hostname = None
        if host_header:
            try:
                hostname = urlsplit(f"//{host_header}").hostname
            except ValueError:
                hostname = None
        return f"http://{url_host(hostname or self.config.host)}:{self.download_port}"

    # ------------------------------------------------------------------------------------- downloads

    def download(self, method: str, target: str, headers: Mapping[str, str]) -> HttpReply:
        reply = self.jobs.download(method, target, headers)
        self.ledger.count("downloads_served" if reply.status == 200 else "downloads_rejected")
        return reply

    # ------------------------------------------------------------------------------------- observation

    def stats(self) -> dict[str, Any]:
        return {
            **self.ledger.stats(),
            "fault_rate": self.faults.rate,
            "create_answers_to_lose": self.lost_creates.pending,
            "token_requests_to_fail": self.token_outages.pending,
            "cpu_seconds": round(self.cpu.seconds, 6),
            "process_cpu_seconds": round(time.process_time(), 6),
            "uptime_seconds": round(time.monotonic() - self._started, 6),
        }
