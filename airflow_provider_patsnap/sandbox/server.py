"""The sandbox's HTTP side: configuration, auth, QPS limit, fault injection, routing and the two servers.

``SandboxApp`` holds all state and turns an :class:`ApiRequest` into an :class:`Outcome`; the handler
classes only move bytes. Everything is standard library so the sandbox starts fast without Airflow.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import random
import secrets
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_patsnap.sandbox.data import ID_KINDS, LANGS, EndpointCode, IdKind, Lang, patent_object
from airflow_provider_patsnap.sandbox.reports import HttpReply, InvalidReportRequest, ReportJobs, validate_id

# ----------------------------------------------------------------------------------------- vocabulary

FAULT_KINDS: tuple[str, ...] = ("qps", "busy", "service", "http500", "http502", "drop", "slow")
# Opt-in kinds (not in the default list): errors a client must NOT retry.
EXTRA_FAULT_KINDS: tuple[str, ...] = ("quota", "permission")

TOKEN_PATH = "/oauth/token"
DATA_PATHS: dict[str, EndpointCode] = {
    "/high-value-data/seic-classification": "P022",
    "/advanced-patent-data/award-data": "P032",
    "/advanced-patent-data/customs-data": "P031",
    "/advanced-patent-data/legal-data": "P026",
}
REPORT_CREATE_PATH = "/patent-valuation-data/patent-report/task/create-no-logo"
REPORT_STATUS_PATH = "/patent-valuation-data/patent-report/job_id/status"
ROUTE_METHODS: dict[str, str] = {
    TOKEN_PATH: "POST",
    **dict.fromkeys(DATA_PATHS, "GET"),
    REPORT_CREATE_PATH: "POST",
    REPORT_STATUS_PATH: "GET",
}
ADMIN_PREFIX = "/_sandbox/"
MAX_BATCH = 100
MAX_BODY_BYTES = 1 << 20
IDLE_TIMEOUT_SECONDS = 60.0  # like a reverse proxy's keep-alive timeout; ends idle handler threads
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"

ERROR_MESSAGES: dict[int, str] = {
    67200000: "API call exceeds the total limit set by the platform!",
    67200001: "API call exceeds the total limit set by the platform!",
    67200002: "The current call rate is too fast, exceeding the current configuration limit QPS!",
    67200003: "Access token expired or authentication error!",
    67200004: "The requested api does not have permission. Please contact our support personnel!",
    67200005: "Insufficient account balance/number of calls!",
    67200006: "The client has exceeded the activation validity period!",
    67200007: "The current call exceeds the configured usage limit of the day!",
    67200008: "Please check if the required apikey in the query parameter has been transmitted!",
    67200009: "The apikey does not match the passed bearerToken. Please check if a valid token is being used!",
    67200012: "The request is illegal!",
    67200100: "The current server status is busy, request response timeout!",
    67200101: "The API requested currently does not exist. Please check the request path!",
    68300004: "Invalid parameter!",
    68300005: "Search api failure!",
    68300006: "Analytic basic access error!",
    68300007: "Bad request!",
    68300008: "Service error, please try again later!",
    68300010: "The file does not comply with upload specifications!",
}
TOKEN_CREDENTIALS_MESSAGE = (
    "The key and secret parameters for applying for the token are incorrect or the client has been disabled!"
)

# The vendor does not say which HTTP status accompanies an error envelope: this is our assumption
# (switched off by error_http_status=False, where every envelope comes with HTTP 200).
HTTP_STATUS_FOR_CODE: dict[int, int] = {
    67200000: 403,
    67200001: 403,
    67200005: 403,
    67200006: 403,
    67200007: 403,
    67200002: 429,
    67200003: 401,
    67200008: 401,
    67200009: 401,
    67200004: 403,
    67200012: 405,
    67200100: 503,
    67200101: 404,
    68300004: 400,
    68300007: 400,
    68300010: 400,
    68300005: 500,
    68300006: 500,
    68300008: 500,
}
FAULT_ERROR_CODES: dict[str, int] = {
    "qps": 67200002,
    "busy": 67200100,
    "service": 68300008,
    "quota": 67200007,
    "permission": 67200004,
}


# ----------------------------------------------------------------------------------------- public data


@dataclass(frozen=True)
class SandboxConfig:
    """Every knob of the sandbox; see docs/sandbox.md. Durations are seconds (floats allowed)."""

    port: int = 0
    host: str = "127.0.0.1"
    latency: float = 0.0
    latency_jitter: float = 0.0
    qps: float = 0.0  # 0 = unlimited
    burst: float | None = None  # None = qps
    token_ttl: float = 1799
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    slow_seconds: float = 40.0
    report_delay: float = 2.0
    link_ttl: float = 7 * 24 * 3600
    seed: int = 0
    error_http_status: bool = True
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    api_key: str = "sk-sandbox-key"
    download_port: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "faults", tuple(self.faults))
        problems = [
            *_range_problems(self),
            *(
                f"unknown fault kind {kind!r}"
                for kind in self.faults
                if kind not in (*FAULT_KINDS, *EXTRA_FAULT_KINDS)
            ),
            *(
                f"{name} must not be empty"
                for name in ("client_id", "client_secret", "api_key")
                if not getattr(self, name)
            ),
        ]
        if self.fault_rate > 0 and not self.faults:
            problems.append("fault_rate > 0 needs at least one fault kind")
        if problems:
            raise ValueError("invalid SandboxConfig: " + "; ".join(problems))


def _range_problems(config: SandboxConfig) -> list[str]:
    checks: list[tuple[str, bool]] = [
        ("port must be 0-65535", 0 <= config.port <= 65535),
        ("download_port must be 0-65535", 0 <= config.download_port <= 65535),
        ("latency must be >= 0", config.latency >= 0),
        ("latency_jitter must be >= 0", config.latency_jitter >= 0),
        ("qps must be >= 0", config.qps >= 0),
        ("burst must be > 0", config.burst is None or config.burst > 0),
        ("token_ttl must be > 0", config.token_ttl > 0),
        ("fault_rate must be between 0 and 1", 0 <= config.fault_rate <= 1),
        ("slow_seconds must be >= 0", config.slow_seconds >= 0),
        ("report_delay must be >= 0", config.report_delay >= 0),
        ("link_ttl must be > 0", config.link_ttl > 0),
    ]
    return [message for message, ok in checks if not ok]


@dataclass(frozen=True)
class RequestRecord:
    """One request to the API server, as the sandbox saw it (never a secret: apikey is masked)."""

    arrival: float  # time.monotonic() when the request line had been read
    wall: float  # time.time() at the same moment
    method: str
    path: str
    params: dict[str, str]
    ids: tuple[str, ...]  # requested patent values (data endpoints, report create)
    http_status: int  # 0 = the connection was dropped without an answer
    error_code: int
    fault: str | None
    authorization_present: bool


# ----------------------------------------------------------------------------------------- internals


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


@dataclass(frozen=True)
class Outcome:
    reply: HttpReply | None  # None = drop the connection without answering
    category: str = "other"  # "business", "token" or "other"
    error_code: int = 0
    fault: str | None = None
    ids: tuple[str, ...] = ()
    billed: int = 0


class TokenBucket:
    """Server-side QPS limit: ``rate`` tokens a second, at most ``capacity`` saved up (the burst)."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(capacity, 1.0)  # below one token no call could ever pass
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class TokenStore:
    """Issued OAuth tokens: token -> (client id, monotonic expiry)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def issue(self, client_id: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            # Drop dead tokens here so a long soak does not grow the table without bound.
            self._tokens = {key: entry for key, entry in self._tokens.items() if entry[1] > now}
            self._tokens[token] = (client_id, now + self._ttl)
        return token

    def client_for(self, token: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def expire_all(self) -> int:
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
        return count


class FaultInjector:
    """Seeded, so a run with the same seed and request order injects the same faults."""

    def __init__(self, rate: float, kinds: tuple[str, ...], seed: int) -> None:
        self._rate = rate
        self._kinds = kinds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"fault rate must be between 0 and 1, got {rate}")
        if rate > 0 and not self._kinds:
            raise ValueError("no fault kinds configured")
        with self._lock:
            self._rate = rate

    def draw(self) -> str | None:
        with self._lock:
            if self._rate <= 0 or self._rng.random() >= self._rate:
                return None
            return self._rng.choice(self._kinds)


class Ledger:
    """Request records and counters, updated together under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_seq = 0
        self._log: list[tuple[int, RequestRecord]] = []  # completion order: stable cursor for ?since=
        self._counts: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0

    def arrive(self) -> int:
        with self._lock:
            self._next_seq += 1
            return self._next_seq

    def enter_business(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def leave_business(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def add(self, seq: int, record: RequestRecord, outcome: Outcome) -> None:
        with self._lock:
            self._log.append((seq, record))
            self._counts["requests"] += 1
            self._counts[f"{outcome.category}_calls"] += 1
            self._counts["billed_units"] += outcome.billed
            self._statuses[str(record.http_status)] += 1
            if outcome.error_code:
                self._errors[str(outcome.error_code)] += 1
            if outcome.fault:
                self._faults[outcome.fault] += 1

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def records(self) -> list[RequestRecord]:
        with self._lock:
            entries = list(self._log)
        return [record for _, record in sorted(entries, key=lambda entry: entry[0])]

    def since(self, index: int) -> list[RequestRecord]:
        with self._lock:
            entries = self._log[max(index, 0) :]
        return [record for _, record in sorted(entries, key=lambda entry: entry[0])]

    def clear(self) -> int:
        with self._lock:
            count = len(self._log)
            self._log.clear()
        return count

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = self._counts
            return {
                "requests": counts["requests"],
                "business_calls": counts["business_calls"],
                "token_calls": counts["token_calls"],
                "tokens_issued": counts["tokens_issued"],
                "billed_units": counts["billed_units"],
                "reports_created": counts["reports_created"],
                "errors": dict(self._errors),
                "faults": dict(self._faults),
                "http_statuses": dict(self._statuses),
                "downloads": {"served": counts["downloads_served"], "rejected": counts["downloads_rejected"]},
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }


def json_reply(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> HttpReply:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
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


def _same(given: str, expected: str) -> bool:
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

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.ledger = Ledger()
        self.tokens = TokenStore(config.token_ttl)
        burst = config.burst if config.burst is not None else config.qps
        self.bucket = TokenBucket(config.qps, burst) if config.qps > 0 else None
        self.faults = FaultInjector(config.fault_rate, config.faults, config.seed)
        self.jobs = ReportJobs(report_delay=config.report_delay, link_ttl=config.link_ttl)
        self.download_port = 0  # set once the download server is bound
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
            return replace(self._issue_token(request), category="token")
        self.ledger.enter_business()
        try:
            outcome = self._business(request)
        finally:
            self.ledger.leave_business()
        return replace(outcome, category="business", ids=self._requested_ids(request))

    def _business(self, request: ApiRequest) -> Outcome:
        # Order matters and is documented: QPS, then latency, then faults, then auth, then the endpoint.
        if self.bucket is not None and not self.bucket.take():
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
        return replace(outcome, fault=fault)

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
            _same(credentials[0], config.client_id) and _same(credentials[1], config.client_secret)
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
            "issued_at": str(int(time.time() * 1000)),
        }
        return Outcome(json_reply(200, payload))

    def _authenticate(self, request: ApiRequest) -> None:
        apikey = request.params.get("apikey", "")
        if not apikey:
            raise ApiError(67200008)
        bearer = _bearer(request.headers.get("authorization"))
        if bearer is not None and _same(bearer, self.config.api_key):  # the sk- key model
            if not _same(apikey, self.config.api_key):
                raise ApiError(67200009)
            return
        client_id = self.tokens.client_for(bearer) if bearer else None
        if client_id is None:
            raise ApiError(67200003)
        if not _same(apikey, client_id):
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
        objects = (patent_object(code, kind, value, lang) for value in dict.fromkeys(values))
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

    # ------------------------------------------------------------------------------------- admin

    def stats(self) -> dict[str, Any]:
        return {**self.ledger.stats(), "fault_rate": self.faults.rate}

    def admin(self, method: str, path: str, params: Mapping[str, str]) -> HttpReply:
        routes: dict[str, tuple[str, Callable[[Mapping[str, str]], Any]]] = {
            "/_sandbox/stats": ("GET", lambda _: self.stats()),
            "/_sandbox/requests": ("GET", self._admin_requests),
            "/_sandbox/expire-tokens": ("POST", lambda _: {"expired": self.tokens.expire_all()}),
            "/_sandbox/fault-rate": ("POST", self._admin_fault_rate),
            "/_sandbox/clear-requests": ("POST", lambda _: {"cleared": self.ledger.clear()}),
        }
        route = routes.get(path)
        if route is None:
            return json_reply(404, {"error": f"unknown admin path {path}", "paths": sorted(routes)})
        if method != route[0]:
            return json_reply(405, {"error": f"use {route[0]} for {path}"}, (("Allow", route[0]),))
        try:
            return json_reply(200, route[1](params))
        except ValueError as error:
            return json_reply(400, {"error": str(error)})

    def _admin_requests(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        since = int(params.get("since") or 0)
        return [asdict(record) for record in self.ledger.since(since)]

    def _admin_fault_rate(self, params: Mapping[str, str]) -> dict[str, float]:
        rate = float(params.get("rate", ""))
        if math.isnan(rate):
            raise ValueError("rate must be a number between 0 and 1")
        self.faults.set_rate(rate)
        return {"fault_rate": rate}


# ----------------------------------------------------------------------------------------- HTTP wiring


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threading server that can also cut its open keep-alive connections on stop."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (the soak's SIGKILL) is normal here, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], app: SandboxApp) -> None:
        self.app = app
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can stall on a reverse-DNS lookup.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every reply carries an exact Content-Length
    server_version = "PatSnapSandbox/1.0"
    timeout = IDLE_TIMEOUT_SECONDS
    server: SandboxHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # per-request lines on stderr would drown test and benchmark output

    def version_string(self) -> str:
        return self.server_version  # without the Python version the default appends

    def do_GET(self) -> None:
        self.serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def serve(self) -> None:
        raise NotImplementedError

    def send_reply(self, reply: HttpReply) -> bool:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
            return True
        except OSError:  # the client went away (e.g. its read timeout fired during a "slow" fault)
            self.close_connection = True
            return False

    def read_body(self) -> bytes:
        """The request body; raises ValueError when it cannot be framed (the connection then closes)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        length = int(length_text)
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ValueError(f"Content-Length {length} out of range")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise ValueError("chunked body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def drop_connection(self) -> None:
        """Close the socket without a byte of response, like a crashed upstream."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()


class ApiHandler(_BaseHandler):
    """The PatSnap API: token, four data endpoints, two report endpoints and /_sandbox/ admin."""

    def serve(self) -> None:
        app = self.server.app
        arrival, wall = time.monotonic(), time.time()
        split = urlsplit(self.path)
        params: dict[str, str] = {}
        for name, value in parse_qsl(split.query, keep_blank_values=True):
            params.setdefault(name, value)  # the first occurrence of a repeated parameter wins
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            body = None
        if split.path.startswith(ADMIN_PREFIX):
            self.send_reply(app.admin(self.command, split.path, params))
            return
        seq = app.ledger.arrive()
        headers = {name.lower(): value for name, value in self.headers.items()}
        if body is None:
            outcome = app.error(68300007, "Bad request! the body could not be read")
        else:
            outcome = self._handle(app, ApiRequest(self.command, split.path, params, headers, body))
        # Record before answering, so a client that has its answer also finds it in requests/stats.
        app.ledger.add(seq, self._record(arrival, wall, split.path, params, headers, outcome), outcome)
        if outcome.reply is None:
            self.drop_connection()
        else:
            self.send_reply(outcome.reply)

    def _record(
        self,
        arrival: float,
        wall: float,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        outcome: Outcome,
    ) -> RequestRecord:
        return RequestRecord(
            arrival=arrival,
            wall=wall,
            method=self.command,
            path=path,
            params={name: "***" if name == "apikey" else value for name, value in params.items()},
            ids=outcome.ids,
            http_status=0 if outcome.reply is None else outcome.reply.status,
            error_code=outcome.error_code,
            fault=outcome.fault,
            authorization_present="authorization" in headers,
        )

    @staticmethod
    def _handle(app: SandboxApp, request: ApiRequest) -> Outcome:
        try:
            return app.handle(request)
        except Exception:  # a sandbox bug: say so on stderr and answer like the vendor's service error
            traceback.print_exc(file=sys.stderr)
            return app.error(68300008)


class DownloadHandler(_BaseHandler):
    """The 'other host' that serves report files from presigned links."""

    def serve(self) -> None:
        try:
            self.read_body()
        except ValueError:
            self.close_connection = True
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.send_reply(self.server.app.download(self.command, self.path, headers))


@dataclass
class RunningServers:
    """The two bound servers and the threads serving them."""

    api: SandboxHTTPServer
    downloads: SandboxHTTPServer
    threads: list[threading.Thread] = field(default_factory=list)

    def stop(self) -> None:
        for server in (self.api, self.downloads):
            server.shutdown()
            server.close_connections()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)


def start_servers(app: SandboxApp) -> RunningServers:
    config = app.config
    downloads = SandboxHTTPServer(config.host, config.download_port, DownloadHandler, app)
    try:
        api = SandboxHTTPServer(config.host, config.port, ApiHandler, app)
    except BaseException:
        downloads.server_close()
        raise
    app.download_port = downloads.port
    running = RunningServers(api, downloads)
    for name, server in (("api", api), ("downloads", downloads)):
        # A short poll interval keeps stop() fast; shutdown() waits for the loop to notice.
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"patsnap-sandbox-{name}",
            daemon=True,
        )
        thread.start()
        running.threads.append(thread)
    return running
