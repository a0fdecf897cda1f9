"""PatsnapHook: the one place that talks to the PatSnap Open API.

Everything on the wire goes through :meth:`PatsnapHook.call`: client-side rate limit, authentication
(a cached token, or an ``sk-`` API key), the ``apikey`` query parameter, timeouts, the response
envelope turned into typed errors, and retries of what is transient.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from email.utils import parsedate_to_datetime
from functools import cached_property
from itertools import islice
from typing import IO, Any

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from airflow_provider_patsnap import CONN_FIELDS, CONNECTION_TYPE, UI_FIELD_BEHAVIOUR, __version__
from airflow_provider_patsnap._compat import BaseHook, mask_secret
from airflow_provider_patsnap.endpoints import AWARD, VALUE_REPORT, Endpoint, IdKind
from airflow_provider_patsnap.exceptions import (
    TOKEN_CODES,
    PatsnapAuthError,
    PatsnapError,
    PatsnapFailFastError,
    PatsnapInputError,
    PatsnapRateLimitError,
    PatsnapReportError,
    PatsnapTransientError,
    build_error,
)
from airflow_provider_patsnap.ids import chunked, match_key, normalise_ids

DEFAULT_BASE_URL = "https://connect.patsnap.com"
TOKEN_PATH = "/oauth/token"
DEFAULT_TOKEN_TTL = 1800.0
TOKEN_REFRESH_MARGIN = 60.0
CONNECT_TIMEOUT = 10.0
MAX_RETRY_WAIT = 60.0
MAX_VENDOR_LATENCY = 10.0
MAX_CONCURRENCY = 64
USER_AGENT = f"airflow-provider-patsnap/{__version__} requests/{requests.__version__}"
_APIKEY_IN_TEXT = re.compile(r"(apikey=)[^&\s'\"]+", re.IGNORECASE)


class _ScrubApikeyFilter(logging.Filter):
    """urllib3 logs every request line, query string and apikey included, at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "apikey=" in message.lower():
            record.msg, record.args = _APIKEY_IN_TEXT.sub(r"\1***", message), ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_ScrubApikeyFilter())


@dataclass(frozen=True)
class ConnectionSettings:
    base_url: str
    client_id: str | None
    client_secret: str | None
    api_key: str | None
    qps: float
    timeout: float
    max_retries: int
    concurrency: int
    verify: bool | str
    proxies: dict[str, str] | None

    @property
    def apikey(self) -> str:
        """The ``apikey`` query value: the client id, or the key itself in the sk- model."""
        return self.api_key or self.client_id or ""

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be printed: the secret, the sk- key and the client id (the apikey)."""
        return tuple(value for value in (self.client_secret, self.api_key, self.client_id) if value)

    @property
    def identity(self) -> tuple[str, str]:
        """Who PatSnap counts calls against: token cache and rate limiter are shared per identity."""
        return (self.base_url, self.apikey)


def _as_bool(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("false", "0", "no", "off")


def default_concurrency(qps: float) -> int:
    """Enough batches in flight to use the whole QPS at the vendor's worst documented latency (10 s)."""
    if qps <= 0:
        return MAX_CONCURRENCY
    return min(MAX_CONCURRENCY, max(2, math.ceil(qps * MAX_VENDOR_LATENCY)))


def parse_connection(conn: Any, overrides: Mapping[str, Any] | None = None) -> ConnectionSettings:
    """Read host, credentials and extras of an Airflow connection, with numeric extras validated."""
    extra: dict[str, Any] = dict(conn.extra_dejson or {})
    extra.update({key: value for key, value in (overrides or {}).items() if value is not None})
    host = (conn.host or "").strip() or DEFAULT_BASE_URL
    if "://" not in host:
        host = f"https://{host}"
    if conn.port:
        host = f"{host.rstrip('/')}:{conn.port}"
    password = conn.password or None
    api_key = extra.get("api_key") or (password if password and password.startswith("sk-") else None)
    client_id = conn.login or None
    if not api_key and not (client_id and password):
        raise PatsnapInputError(
            f"connection {conn.conn_id!r} needs a client id (login) and client secret (password), "
            "or an sk- API key (password)"
        )

    def number(name: str, cast: type, minimum: float) -> Any:
        raw = extra.get(name, CONN_FIELDS[name][3] if name in CONN_FIELDS else None)
        try:
            value = cast(raw)
        except (TypeError, ValueError):
            raise PatsnapInputError(
                f"connection {conn.conn_id!r}: extra {name!r} must be a number, got {raw!r}"
            ) from None
        if value < minimum:
            raise PatsnapInputError(
                f"connection {conn.conn_id!r}: extra {name!r} must be >= {minimum}, got {raw!r}"
            )
        return value

    qps = number("qps", float, 0)
    proxies = extra.get("proxies") or None
    if isinstance(proxies, str):
        try:
            proxies = json.loads(proxies)
        except ValueError:
            raise PatsnapInputError(f"connection {conn.conn_id!r}: extra 'proxies' is not JSON") from None
    verify = extra.get("verify", True)
    if not (isinstance(verify, str) and "/" in verify):  # a CA bundle path stays a path
        verify = _as_bool(verify, True)
    concurrency = number("concurrency", int, 1) if extra.get("concurrency") else default_concurrency(qps)
    return ConnectionSettings(
        base_url=host.rstrip("/"),
        client_id=None if api_key else client_id,
        client_secret=None if api_key else password,
        api_key=api_key,
        qps=qps,
        timeout=number("timeout", float, 0.001),
        max_retries=number("max_retries", int, 0),
        concurrency=concurrency,
        verify=verify,
        proxies=proxies,
    )


class RateLimiter:
    """Spaces calls at least ``1/qps`` apart across every thread that shares it (0 means unlimited).

    Even spacing rather than bursts: the vendor's QPS window is not published, and a burst at a window
    edge is what gets a 67200002 back.
    """

    def __init__(self, qps: float) -> None:
        self.interval = 1.0 / qps if qps > 0 else 0.0
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        if slot > now:
            time.sleep(slot - now)

    def pause(self, seconds: float) -> None:
        """PatSnap said "too fast": hold every thread's next call, not only the one that was told."""
        with self._lock:
            self._next_slot = max(self._next_slot, time.monotonic() + seconds)


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """One token per identity for the whole process, fetched by one thread while the others wait."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def get(self, fetch: Any) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._token.expires_at:
                value, ttl = fetch()
                margin = min(TOKEN_REFRESH_MARGIN, ttl / 2)
                self._token = _Token(value, time.monotonic() + ttl - margin)
            return self._token.value

    def invalidate(self, value: str) -> None:
        """Drop ``value`` unless another thread already replaced it."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None


_SHARED_LOCK = threading.Lock()
_TOKEN_CACHES: dict[tuple[str, str, str], TokenCache] = {}
_RATE_LIMITERS: dict[tuple[str, str, float], RateLimiter] = {}


def _shared_token_cache(settings: ConnectionSettings) -> TokenCache:
    key = (*settings.identity, str(hash(settings.client_secret)))
    with _SHARED_LOCK:
        return _TOKEN_CACHES.setdefault(key, TokenCache())


def _shared_rate_limiter(settings: ConnectionSettings) -> RateLimiter:
    key = (*settings.identity, settings.qps)
    with _SHARED_LOCK:
        return _RATE_LIMITERS.setdefault(key, RateLimiter(settings.qps))


def parse_token_response(body: Any) -> tuple[str, float] | None:
    """Token and lifetime, or None when there is no token. Public clients disagree on the shape:
    accept ``token``, ``access_token`` or ``data.token``."""
    if not isinstance(body, Mapping):
        return None
    nested = body.get("data")
    data: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    token = body.get("token") or body.get("access_token") or data.get("token") or data.get("access_token")
    if not token or not isinstance(token, str):
        return None
    raw_ttl = body.get("expires_in", data.get("expires_in"))
    try:
        ttl = float(raw_ttl) if raw_ttl not in (None, "") else DEFAULT_TOKEN_TTL
    except (TypeError, ValueError):
        ttl = DEFAULT_TOKEN_TTL
    return token, ttl if ttl > 0 else DEFAULT_TOKEN_TTL


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _retry_after_seconds(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def job_id_text(value: Any) -> str:
    """A 19-digit job id must never pass through a float: accept only an int or a digit string."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise PatsnapReportError(f"PatSnap returned a job_id that is not an integer: {value!r}")
    return str(value).strip()


@dataclass
class BatchResult:
    """One chunk of a batch lookup: the per-patent objects that came back and the ids that did not."""

    requested: list[str]
    patents: list[dict[str, Any]]
    missing: list[str]


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0
    token_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)


class PatsnapHook(BaseHook):
    """
    Interact with the PatSnap Open API.

    Credentials come from an Airflow connection of type ``patsnap``: host = base URL (default
    ``https://connect.patsnap.com``), login = client id and password = client secret, or password =
    an ``sk-`` API key. Extras: ``qps``, ``timeout``, ``max_retries``, ``verify``, ``proxies``,
    ``concurrency``.

    :param patsnap_conn_id: The Airflow connection id.
    :param qps: Overrides the connection's ``qps`` (requests per second) for this hook.
    :param timeout: Overrides the connection's read timeout in seconds.
    :param max_retries: Overrides the connection's number of retries of a transient failure.
    :param concurrency: Overrides the number of batches in flight at once in :meth:`lookup`.
    """

    conn_name_attr = "patsnap_conn_id"
    default_conn_name = "patsnap_default"
    conn_type = CONNECTION_TYPE
    hook_name = "PatSnap"

    def __init__(
        self,
        patsnap_conn_id: str = default_conn_name,
        *,
        qps: float | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        concurrency: int | None = None,
    ) -> None:
        super().__init__()
        self.patsnap_conn_id = patsnap_conn_id
        self._overrides = {
            "qps": qps,
            "timeout": timeout,
            "max_retries": max_retries,
            "concurrency": concurrency,
        }
        self.stats = CallStats()

    # --- connection form (Airflow 2.11-3.1; 3.2+ reads get_provider_info) ---------------------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return UI_FIELD_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, IntegerField, StringField
        from wtforms.validators import NumberRange, Optional

        fields: dict[str, Any] = {}
        for name, (label, description, json_type, default) in CONN_FIELDS.items():
            if json_type == "boolean":
                fields[name] = BooleanField(lazy_gettext(label), default=default, description=description)
            elif json_type == "integer":
                fields[name] = IntegerField(
                    lazy_gettext(label),
                    widget=BS3TextFieldWidget(),
                    validators=[Optional(), NumberRange(min=0)],
                    default=default,
                    description=description,
                )
            else:
                fields[name] = StringField(
                    lazy_gettext(label), widget=BS3TextFieldWidget(), default=default, description=description
                )
        return fields

    # --- state ---------------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> ConnectionSettings:
        settings = parse_connection(self.get_connection(self.patsnap_conn_id), self._overrides)
        for secret in settings.secrets:
            mask_secret(secret)
        return settings

    def _new_session(self) -> requests.Session:
        """A session with our TLS, proxy and User-Agent settings, and no credentials."""
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        session.verify = self.settings.verify
        if self.settings.proxies:
            session.proxies.update(self.settings.proxies)
        return session

    @cached_property
    def session(self) -> requests.Session:
        """The keep-alive session to PatSnap, pooled for every batch in flight."""
        session = self._new_session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.settings.concurrency + 4)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        """Close the pooled connections (a long-lived process such as the triggerer should)."""
        if "session" in self.__dict__:
            self.__dict__.pop("session").close()

    @cached_property
    def _token_cache(self) -> TokenCache:
        return _shared_token_cache(self.settings)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        return _shared_rate_limiter(self.settings)

    def get_conn(self) -> requests.Session:
        return self.session

    # --- wire ----------------------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """Remove every credential from ``text`` (requests puts the full URL into its exceptions)."""
        text = _APIKEY_IN_TEXT.sub(r"\1***", text)
        for secret in self.settings.secrets:
            text = text.replace(secret, "***")
        return text

    def _fetch_token(self) -> tuple[str, float]:
        settings = self.settings
        self.stats.add("token_requests")
        response = self._send(
            "POST",
            TOKEN_PATH,
            context="token request",
            data={"grant_type": "client_credentials"},
            auth=(settings.client_id or "", settings.client_secret or ""),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        body = self._json(response)
        parsed = parse_token_response(body) if response.ok else None
        if parsed is None:
            raise self._error_from(response, body, "token request", fallback="no token in the response")
        token, ttl = parsed
        mask_secret(token)
        self.log.info("Fetched a PatSnap access token valid for %.0f s", ttl)
        return token, ttl

    def _bearer(self) -> str:
        if self.settings.api_key:
            return self.settings.api_key
        return self._token_cache.get(self._fetch_token)

    def _send(self, method: str, path: str, *, context: str, **kwargs: Any) -> requests.Response:
        url = f"{self.settings.base_url}{path}"
        try:
            return self.session.request(
                method, url, timeout=(CONNECT_TIMEOUT, self.settings.timeout), **kwargs
            )
        except requests.RequestException as err:
            transient = isinstance(err, requests.ConnectionError | requests.Timeout)
            failure = (PatsnapTransientError if transient else PatsnapError)(
                f"PatSnap {context} failed: {type(err).__name__}: {self.scrub(str(err))}"
            )
        # Raised outside the except block, so no __context__ keeps requests' text (URL and apikey).
        raise failure

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            # Floats stay text: codes such as 1.10 must not become 1.1, and no id may pass a float.
            return json.loads(response.content.decode("utf-8"), parse_float=str)
        except (ValueError, UnicodeDecodeError):
            return None

    def _error_from(
        self, response: requests.Response, body: Any, context: str, fallback: str | None = None
    ) -> PatsnapError:
        envelope = body if isinstance(body, Mapping) else {}
        message = envelope.get("error_msg") or envelope.get("message") or fallback
        if not isinstance(body, Mapping):
            message = f"non-JSON body ({response.headers.get('Content-Type', 'no content type')})"
        return build_error(
            error_code=_int_or_none(envelope.get("error_code")),
            http_status=response.status_code,
            vendor_message=self.scrub(str(message)) if message else None,
            context=context,
            retry_after=_retry_after_seconds(response),
        )

    def _call_once(self, method: str, path: str, context: str, **kwargs: Any) -> Any:
        params = {**kwargs.pop("params", {}), "apikey": self.settings.apikey}
        for attempt in ("first", "after token refresh"):
            bearer = self._bearer()
            self.rate_limiter.acquire()
            self.stats.add("calls")
            response = self._send(
                method,
                path,
                context=context,
                params=params,
                headers={"Authorization": f"Bearer {bearer}"},
                **kwargs,
            )
            body = self._json(response)
            if isinstance(body, Mapping) and body.get("status") is True and response.ok:
                return body.get("data")
            error = self._error_from(response, body, context)
            token_error = isinstance(error, PatsnapAuthError) and (
                error.error_code in TOKEN_CODES or (error.error_code is None and error.http_status == 401)
            )
            if not (token_error and attempt == "first" and not self.settings.api_key):
                raise error
            self.log.info("PatSnap rejected the token (error_code=%s); fetching a new one", error.error_code)
            self._token_cache.invalidate(bearer)
        raise AssertionError("unreachable")

    def _wait_seconds(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_WAIT) + random.uniform(0, 0.25)
        backoff = min(MAX_RETRY_WAIT, 0.5 * 2 ** (state.attempt_number - 1))
        return random.uniform(backoff / 2, backoff)  # jitter keeps parallel batches from retrying in step

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add("retries")
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, PatsnapRateLimitError) and state.next_action:
            self.rate_limiter.pause(state.next_action.sleep)
        self.log.warning(
            "Retrying in %.1f s (attempt %d of %d): %s",
            state.next_action.sleep if state.next_action else 0,
            state.attempt_number + 1,
            self.settings.max_retries + 1,
            error,
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        context: str | None = None,
        idempotent: bool = True,
    ) -> Any:
        """Make one API call and return the envelope's ``data``, or raise a typed :class:`PatsnapError`.

        Transient failures are retried with exponential backoff and jitter (``Retry-After`` honoured).
        A call that is not idempotent (creating a paid report) is retried only on a rate-limit answer,
        which PatSnap gives before doing any work.

        :param method: HTTP method.
        :param path: Path under the base URL, for example ``/advanced-patent-data/legal-data``.
        :param params: Query parameters; ``apikey`` is added.
        :param json_body: JSON body for a POST.
        :param context: Words for error messages and logs; defaults to ``METHOD path``.
        :param idempotent: Whether a call whose outcome is unknown may be repeated.
        """
        retryable = PatsnapTransientError if idempotent else PatsnapRateLimitError
        retrying = Retrying(
            retry=retry_if_exception(lambda error: isinstance(error, retryable)),
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=self._wait_seconds,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        extra: dict[str, Any] = {"params": dict(params or {})}
        if json_body is not None:
            extra["json"] = dict(json_body)
        return retrying(self._call_once, method, path, context or f"{method} {path}", **extra)

    # --- data endpoints ------------------------------------------------------------------------------

    def fetch_batch(
        self, endpoint: Endpoint, ids: list[str], id_kind: IdKind, params: Mapping[str, Any] | None = None
    ) -> BatchResult:
        """Fetch one batch of at most 100 ids from a data endpoint."""
        data = self.call(
            endpoint.method,
            endpoint.path,
            params={**(params or {}), id_kind: ",".join(ids)},
            context=f"{endpoint.code} {endpoint.title} for {len(ids)} {id_kind}(s) starting {ids[0]!r}",
        )
        if not isinstance(data, list | None) or not all(isinstance(item, dict) for item in data or ()):
            raise PatsnapFailFastError(
                f"PatSnap {endpoint.code} returned data of an unexpected shape for ids starting "
                f"{ids[0]!r}: {str(data)[:200]}"
            )
        patents: list[dict[str, Any]] = data or []
        field_name = "patent_id" if id_kind == "patent_id" else "pn"
        found = {match_key(str(item.get(field_name) or "")) for item in patents}
        missing = [value for value in ids if match_key(value) not in found]
        return BatchResult(requested=ids, patents=patents, missing=missing)

    def lookup(
        self,
        endpoint: Endpoint,
        ids: Iterable[str] | str,
        id_kind: IdKind = "patent_number",
        *,
        params: Mapping[str, Any] | None = None,
        batch_size: int = 100,
    ) -> Iterator[BatchResult]:
        """Fetch any number of ids in batches of at most 100, concurrently within the rate limit.

        Ids are validated and de-duplicated first. Results are yielded as batches complete, so memory
        stays flat. If a batch fails for good, the batches already in flight are still yielded, no new
        ones start, and the error is raised naming how many ids were not fetched.

        :param endpoint: An entry of :data:`~airflow_provider_patsnap.endpoints.ENDPOINTS`.
        :param ids: Patent ids or numbers, as a list or a comma-separated string.
        :param id_kind: ``patent_number`` or ``patent_id``.
        :param params: Extra query parameters of the endpoint (P022's ``lang``).
        :param batch_size: Ids per call, at most 100.
        """
        unique = normalise_ids(ids, id_kind)
        batches = chunked(unique, batch_size)
        window = self.settings.concurrency * 2  # bounded, so millions of ids never sit in the queue
        self.session  # noqa: B018 - create it here, not racing in the worker threads
        executor = ThreadPoolExecutor(
            self.settings.concurrency, thread_name_prefix=f"patsnap-{endpoint.code}"
        )
        pending: dict[Future[BatchResult], list[str]] = {}

        def submit(batch: list[str]) -> None:
            pending[executor.submit(self.fetch_batch, endpoint, batch, id_kind, params)] = batch

        failure: BaseException | None = None
        failed_ids = 0
        try:
            for batch in islice(batches, window):
                submit(batch)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    batch = pending.pop(future)
                    error = future.exception()
                    if error is not None:
                        failure = failure or error
                        failed_ids += len(batch)
                        continue
                    yield future.result()
                    next_batch = None if failure else next(batches, None)
                    if next_batch:
                        submit(next_batch)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        if failure is not None:
            not_fetched = failed_ids + sum(len(batch) for batch in batches)
            failure.add_note(
                f"{not_fetched} of {len(unique)} id(s) were not fetched; the batches fetched before were "
                "handed to the destination, and a rerun is safe (writes are idempotent)"
            )
            raise failure

    # --- value report (R002) -------------------------------------------------------------------------

    def create_value_report(
        self, *, patent_id: str | None = None, patent_number: str | None = None, report_type: str = "pdf"
    ) -> str:
        """Create a patent value report job and return its ``job_id`` as an exact string."""
        if bool(patent_id) == bool(patent_number):
            raise PatsnapInputError(
                f"give exactly one of patent_id or patent_number, got {patent_id!r} and {patent_number!r}"
            )
        if report_type not in VALUE_REPORT.report_types:
            raise PatsnapInputError(
                f"report_type must be one of {VALUE_REPORT.report_types}, got {report_type!r}"
            )
        body = {"patent_id": patent_id} if patent_id else {"patent_number": patent_number}
        data = self.call(
            "POST",
            VALUE_REPORT.create_path,
            json_body={**body, "report_type": report_type},
            context=f"R002 report creation for {patent_id or patent_number}",
            idempotent=False,
        )
        if not isinstance(data, Mapping):
            raise PatsnapReportError(f"PatSnap created a report job but sent no job_id: {str(data)[:200]}")
        return job_id_text(data.get("job_id"))

    def get_report_status(self, job_id: str) -> dict[str, Any]:
        """Return the job's status: ``job_id`` (string), ``job_status``, ``queue_num``, ``download_url``,
        ``abnormal_cause``."""
        data = self.call(
            "GET",
            VALUE_REPORT.status_path,
            params={"job_id": job_id_text(job_id)},
            context=f"R002 status of job {job_id}",
        )
        data = dict(data or {})
        data["job_id"] = job_id_text(data.get("job_id", job_id))
        data["job_status"] = int(Decimal(str(data.get("job_status", -1))))
        return data

    def download(self, url: str, target: IO[bytes], chunk_size: int = 1 << 16) -> tuple[int, int | None]:
        """Stream a presigned report link into ``target``; return (bytes written, Content-Length).

        The link lives on another host: a bare session is used so no PatSnap credential travels there.
        """
        with self._new_session() as bare:
            try:
                response = bare.get(url, stream=True, timeout=(CONNECT_TIMEOUT, self.settings.timeout))
            except requests.RequestException as err:
                raise PatsnapTransientError(f"report download failed: {type(err).__name__}") from None
            with response:
                if response.status_code in (400, 403) and b"expired" in response.content.lower():
                    raise PatsnapReportError(
                        "the report's download link has expired (links live 7 days): create a new report"
                    )
                if not response.ok:
                    raise PatsnapReportError(
                        f"report download failed with HTTP {response.status_code}: {response.text[:200]}"
                    )
                written = 0
                for chunk in response.iter_content(chunk_size):
                    target.write(chunk)
                    written += len(chunk)
                length = _int_or_none(response.headers.get("Content-Length"))
                return written, length

    # --- connection test -----------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Check the credentials: fetch a token, or make one free call with an sk- API key."""
        try:
            settings = self.settings
        except (PatsnapError, ValueError) as err:
            return False, str(err)
        try:
            if settings.api_key:
                self.call("GET", AWARD.path, params={"patent_number": "TEST0000000"})
                return True, f"API key accepted by {settings.base_url}"
            self._fetch_token()
            return True, f"Token issued by {settings.base_url}"
        except PatsnapAuthError as err:
            return False, str(err)
        except PatsnapError as err:
            if settings.api_key and not isinstance(err, PatsnapTransientError):
                return True, f"API key accepted by {settings.base_url} ({err})"
            return False, str(err)
        except Exception as err:
            return False, self.scrub(f"{type(err).__name__}: {err}")
