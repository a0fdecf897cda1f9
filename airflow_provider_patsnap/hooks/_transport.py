"""The wire under :class:`~airflow_provider_patsnap.hooks.patsnap.PatsnapHook`: one place for HTTP.

Rate limit → authentication (bearer token or ``sk-`` key, and the ``apikey`` query value) → HTTP with a
wall-clock deadline → the response envelope, read strictly → a typed error or the payload, retried when
transient. Tokens and rate limiters are shared per PatSnap identity for the whole process (:mod:`._shared`,
whose ``reset_shared_state`` forgets them). Every wait reads an injectable clock and can be cancelled.
Every text this module builds or logs goes through the connection's :class:`Scrubber` first.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from urllib3.exceptions import NewConnectionError

from airflow_provider_patsnap import __version__
from airflow_provider_patsnap.connection import ConnectionSettings
from airflow_provider_patsnap.exceptions import (
    TOKEN_CODES,
    PatsnapAuthError,
    PatsnapError,
    PatsnapRateLimitError,
    PatsnapTransientError,
    build_error,
)
from airflow_provider_patsnap.hooks._deadline import DeadlineAdapter, deadline, remaining
from airflow_provider_patsnap.hooks._shared import (
    Cancellation,
    current_clock,
    shared_rate_limiter,
    shared_token_cache,
)
from airflow_provider_patsnap.observability import (
    CALL_DURATION,
    CALLS,
    ERRORS,
    RATE_LIMITED,
    RETRIES,
    Metrics,
)

if TYPE_CHECKING:
    from airflow_provider_patsnap.hooks._shared import TokenCache


# --- the response envelope ------------------------------------------------------------------------

DEFAULT_TOKEN_TTL = 1800.0


class Body(NamedTuple):
    """A response body as JSON: ``value`` when it parsed, else ``problem`` says why not."""

    value: Any
    problem: str | None


# msgspec (installed with every Airflow we support) reads a well-formed body faster than json
# (docs/performance.md), and hands floats over as their text exactly as ``parse_float=str`` does.
_decode_fast = msgspec.json.Decoder(float_hook=str).decode


def parse_body(content: bytes) -> Body:
    """Parse JSON with floats kept as text (codes such as 1.10 stay "1.10", no id passes a float)."""
    try:
        return Body(_decode_fast(content), None)
    except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
        pass  # a BOM, NaN, a lone surrogate escape, or not JSON at all: json decides, and says why
    try:
        text = content.decode("utf-8-sig")  # a UTF-8 byte order mark is still UTF-8 JSON
    except UnicodeDecodeError:
        return Body(None, "a body that is not UTF-8")
    try:
        return Body(json.loads(text, parse_float=str), None)
    except RecursionError:
        return Body(None, "JSON nested too deeply to read")
    except ValueError:
        return Body(None, "a body that is not JSON" if text.strip() else "an empty body")


def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def retry_after_seconds(response: requests.Response) -> float | None:
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


def error_from_response(
    response: requests.Response, body: Body, description: str, scrub: Callable[[str], str]
) -> PatsnapError:
    """The typed error for an answer that is not a success; its message carries no secret."""
    envelope = body.value if isinstance(body.value, Mapping) else None
    if envelope is None:
        content_type = response.headers.get("Content-Type", "no content type")
        shape = body.problem or f"JSON that is not an envelope (a {type(body.value).__name__})"
        message: str | None = f"{shape} ({content_type})"
    else:
        message = envelope.get("error_msg") or envelope.get("message")
    error = build_error(
        error_code=int_or_none(envelope.get("error_code")) if envelope else None,
        http_status=response.status_code,
        vendor_message=scrub(str(message)) if message else None,
        context=description,
        retry_after=retry_after_seconds(response),
    )
    # A 5xx without PatSnap's envelope came from something in front of it (a gateway, a proxy): the
    # request may have been served and billed behind it. An envelope is PatSnap saying it failed.
    error.answer_lost = envelope is None and response.status_code >= 500
    return error


#: Where public clients find the token (CONTRACT.md); the first one holding text wins.
TOKEN_FIELDS = ("token", "access_token", "data.token", "data.access_token")
#: The longest ``expires_in`` believed: PatSnap documents 1799 s; a day or more is most likely another
#: unit (1799000 milliseconds would keep a dead token for 20 days).
MAX_TOKEN_TTL = 86400.0


class TokenAnswer(NamedTuple):
    """A token answer read: the token, its lifetime in seconds, and the ``expires_in`` it gave when
    that was not a lifetime (``ttl`` is then :data:`DEFAULT_TOKEN_TTL`), else None."""

    token: str
    ttl: float
    odd_expires_in: Any = None


def _field(body: Mapping[str, Any], where: str) -> Any:
    """``body["token"]`` for ``"token"``, ``body["data"]["token"]`` for ``"data.token"``; None if absent."""
    value: Any = body
    for name in where.split("."):
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


def token_lifetime(raw: Any) -> float | None:
    """``expires_in`` as seconds: a number or a number as text (``1799``, ``"1799"``, ``1799.5``), more
    than 0 and at most :data:`MAX_TOKEN_TTL`. None for anything else: a boolean (``true`` is not a
    duration, though Python counts it as 1), NaN, an infinity, zero or less, more than a day, other text."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if 0 < seconds <= MAX_TOKEN_TTL else None  # NaN fails both comparisons


def parse_token_response(body: Any) -> TokenAnswer | None:
    """The token and its lifetime, or None when no field of :data:`TOKEN_FIELDS` holds a token. Public
    clients disagree on the shape. A missing or odd ``expires_in`` is the documented 1800 s."""
    if not isinstance(body, Mapping):
        return None
    token = next(
        (value for where in TOKEN_FIELDS if isinstance(value := _field(body, where), str) and value), None
    )
    if token is None:
        return None
    raw = body.get("expires_in", _field(body, "data.expires_in"))
    ttl = token_lifetime(raw)
    if ttl is not None:
        return TokenAnswer(token, ttl)
    return TokenAnswer(token, DEFAULT_TOKEN_TTL, None if raw in (None, "") else raw)


_MAX_NAMES = 30


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "empty text" if not value else "text"
    return "a list" if isinstance(value, list) else "an object"


def missing_token(body: Mapping[str, Any]) -> str:
    """Why a JSON object that reports no error holds no token, said by its field names alone (values are
    left out: one of them may be the token, under a name no client knows). Enough to report the shape."""
    names = [str(name) for name in body]
    nested = body.get("data")
    if isinstance(nested, Mapping):
        names += [f"data.{name}" for name in nested]
    unusable = [
        f"{where} is {_kind(value)}"
        for where in TOKEN_FIELDS
        if (value := _field(body, where)) is not None and not (isinstance(value, str) and value)
    ]
    shown = ", ".join(name[:60] for name in names[:_MAX_NAMES])
    more = f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else ""
    return (
        f"the answer has no token in {', '.join(TOKEN_FIELDS[:-1])} or {TOKEN_FIELDS[-1]}"
        f"{' (' + '; '.join(unusable) + ')' if unusable else ''}; its fields are {shown or 'none'}{more}. "
        "Report these names (the values are left out) so this shape can be read"
    )


# --- credentials kept out of every text -----------------------------------------------------------

_APIKEY_IN_TEXT = re.compile(r"(apikey=)[^&\s'\"]+", re.IGNORECASE)
_AUTHORIZATION_IN_TEXT = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
MASK = "***"


class Scrubber:
    """Replaces every known credential in a text by ``***``; learns tokens as they are issued."""

    def __init__(self, secrets: Iterable[str], basic_pair: tuple[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)
        if basic_pair and all(basic_pair):
            self.add(base64.b64encode(f"{basic_pair[0]}:{basic_pair[1]}".encode()).decode())

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        from airflow_provider_patsnap._compat import mask_secret

        mask_secret(secret)
        with self._lock:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        text = _AUTHORIZATION_IN_TEXT.sub(rf"\1 {MASK}", _APIKEY_IN_TEXT.sub(rf"\1{MASK}", text))
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)  # a longer secret may contain a shorter
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text


class ScrubQueryFilter(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string included: the ``apikey``, and a presigned
    report link's signature (a credential for the file). Every query value is masked; names stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message and "=" in message:
            record.msg, record.args = _QUERY_VALUE.sub(rf"\1={MASK}", message), ()
        return True


_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&\s\"?]+)=[^&\s\"]*")
logging.getLogger("urllib3.connectionpool").addFilter(ScrubQueryFilter())

# --- credentials on a call ------------------------------------------------------------------------


class PatsnapAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer``: a cached token, or the sk- key (:meth:`Transport.call` adds the
    ``apikey`` query value, with the other parameters, so the long URL is encoded once)."""

    def __init__(
        self, settings: ConnectionSettings, tokens: TokenCache, fetch: Callable[[], tuple[str, float]]
    ):
        self.settings = settings
        self.tokens = tokens
        self.fetch = fetch

    def bearer(self) -> str:
        return self.settings.api_key or self.tokens.get(self.fetch)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.bearer()}"
        return request

    def renew(self, request: requests.PreparedRequest) -> bool:
        """PatSnap rejected the token ``request`` carried: drop it; False when no renewal can help."""
        if self.settings.api_key:
            return False
        sent = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        self.tokens.invalidate(sent)
        return True


# --- calls ----------------------------------------------------------------------------------------

TOKEN_PATH = "/oauth/token"
CONNECT_TIMEOUT = 10.0
MAX_RETRY_WAIT = 60.0
USER_AGENT = f"airflow-provider-patsnap/{__version__} requests/{requests.__version__}"

log = logging.getLogger(__name__)


@dataclass
class CallStats:
    """What one hook's calls did so far (the metrics of :mod:`..observability` count the same)."""

    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    token_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)


class _Exchange(NamedTuple):
    """What every attempt of one call sends, and whom it tells."""

    method: str
    path: str
    description: str
    endpoint: str  # the metrics' endpoint tag: P026, R002, ...
    before_send: Callable[[], None] | None
    after_failure: Callable[[PatsnapError], None] | None
    kwargs: dict[str, Any]


class _TokenRenewed(Exception):
    """PatSnap rejected the token the exchange carried; it was dropped, so one more exchange may help."""

    def __init__(self, error: PatsnapError) -> None:
        super().__init__(str(error))
        self.error = error


def _may_have_arrived(error: requests.RequestException) -> bool:
    """Whether a failed exchange's request may have reached PatSnap: everything but a connection that
    was never made (refused, unresolvable, or not made in time)."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return False
    cause = error.args[0] if error.args else None
    return not isinstance(getattr(cause, "reason", cause), NewConnectionError)


def retry_wait(state: RetryCallState) -> float:
    """``Retry-After`` when the server sent one, else tenacity's jittered exponential backoff."""
    error = state.outcome.exception() if state.outcome else None
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return float(min(retry_after, MAX_RETRY_WAIT))
    return float(wait_exponential_jitter(multiplier=0.5, max=MAX_RETRY_WAIT, jitter=0.5)(state))


class Transport:
    """Sends PatSnap calls for one hook: session, auth, rate limit, deadline, envelope and retries."""

    def __init__(
        self, settings: ConnectionSettings, logger: Any = None, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.log = logger or log
        self.metrics = metrics or Metrics()
        self._metrics_by_endpoint: dict[str, Metrics] = {}
        self.scrubber = Scrubber(settings.secrets, (settings.client_id or "", settings.client_secret or ""))
        self.stats = CallStats()
        self.clock = current_clock()
        self.cancellation = Cancellation(self.clock)
        self.rate_limiter = shared_rate_limiter(settings)
        self.auth = PatsnapAuth(settings, shared_token_cache(settings), self.fetch_token)
        self.session = self.new_session(pool_size=settings.concurrency + 4)

    def new_session(self, pool_size: int = 4) -> requests.Session:
        """A session with our TLS, proxy, User-Agent and deadline settings, and no credentials."""
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        session.verify = self.settings.verify
        if self.settings.proxies:
            session.proxies.update(self.settings.proxies)
        adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=pool_size)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        self.session.close()

    def tls_and_proxies(self) -> dict[str, Any]:
        """``verify`` and ``proxies`` for each request: on a session, requests lets REQUESTS_CA_BUNDLE /
        CURL_CA_BUNDLE and HTTPS_PROXY override them (a `verify: false` or a CA bundle of the connection
        silently lost); per request, the connection's settings win."""
        settings: dict[str, Any] = {"verify": self.settings.verify}
        if self.settings.proxies:
            settings["proxies"] = self.settings.proxies
        return settings

    def timeouts(self) -> tuple[float, float]:
        """requests' (connect, read) timeouts inside a deadline: neither may outlast what is left."""
        left = remaining()
        budget = self.settings.timeout if left is None else max(left, 0.001)
        return (min(CONNECT_TIMEOUT, budget), budget)

    def send(self, method: str, url: str, description: str, **kwargs: Any) -> requests.Response:
        """One HTTP exchange within ``settings.timeout`` in all; body read; errors scrubbed and typed."""
        self.cancellation.check()
        failure: PatsnapError
        with deadline(self.settings.timeout, self.cancellation.watch):
            try:
                response = self.session.request(
                    method, url, timeout=self.timeouts(), **self.tls_and_proxies(), **kwargs
                )
                response.content  # noqa: B018 - the body is read inside the deadline
                return response
            except requests.RequestException as err:
                over = (remaining() or 0) <= 0
                transient = over or isinstance(
                    err,
                    requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError,
                )
                reason = (
                    f"no complete answer within timeout={self.settings.timeout:g} s"
                    if over
                    else f"{type(err).__name__}: {self.scrubber(str(err))}"
                )
                failure = (PatsnapTransientError if transient else PatsnapError)(
                    f"PatSnap {description} failed: {reason}", answer_lost=_may_have_arrived(err)
                )
        # Raised outside the except block, so no __context__ keeps requests' text (URL and apikey).
        raise failure

    def fetch_token(self) -> tuple[str, float]:
        settings = self.settings
        self.stats.add("token_requests")
        response = self.send(
            "POST",
            f"{settings.base_url}{TOKEN_PATH}",
            "token request",
            data={"grant_type": "client_credentials"},
            auth=(settings.client_id or "", settings.client_secret or ""),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        body = parse_body(response.content)
        answer = parse_token_response(body.value) if response.ok else None
        if answer is None:
            envelope = body.value if isinstance(body.value, Mapping) else None
            said_error = envelope is not None and (
                envelope.get("status") is False or int_or_none(envelope.get("error_code"))
            )
            if response.ok and envelope is not None and not said_error:  # a shape we cannot read
                raise PatsnapError(
                    self.scrubber(
                        f"PatSnap token request failed, HTTP {response.status_code}: {missing_token(envelope)}"
                    ),
                    http_status=response.status_code,
                )
            raise error_from_response(response, body, "token request", self.scrubber)
        self.scrubber.add(answer.token)
        if answer.odd_expires_in is not None:
            self.log.warning(
                "PatSnap's token answer gave expires_in=%s, not a lifetime in seconds (more than 0, at most "
                "%.0f): the token is taken to live %.0f s, the documented default",
                self.scrubber(repr(answer.odd_expires_in))[:80],
                MAX_TOKEN_TTL,
                answer.ttl,
            )
        self.log.info("Fetched a PatSnap access token valid for %.0f s", answer.ttl)
        return answer.token, answer.ttl

    def call_once(
        self,
        method: str,
        path: str,
        description: str,
        *,
        slot_taken: bool = False,
        endpoint: str = "",
        before_send: Callable[[], None] | None = None,
        after_failure: Callable[[PatsnapError], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One call, repeated once with a new token when PatSnap rejects the token.

        ``slot_taken``: the caller already waited for this call's rate-limit slot (a token renewal
        still takes its own). ``before_send``: called when only sending is left (the slot waited for,
        the token in hand, the task not stopped), before each request goes out. ``after_failure``: told
        every error an exchange ends with, the rejected token's included.
        """
        exchange = _Exchange(method, path, description, endpoint, before_send, after_failure, kwargs)
        try:
            return self._exchange(exchange, slot_taken, may_renew_token=True)
        except _TokenRenewed as renewed:
            self.log.info(
                "PatSnap rejected the token (error_code=%s); fetching a new one", renewed.error.error_code
            )
        return self._exchange(exchange, slot_taken=False, may_renew_token=False)

    def _metrics(self, endpoint: str) -> Metrics:
        """The metrics tagged with ``endpoint``, made once per endpoint."""
        found = self._metrics_by_endpoint.get(endpoint)
        if found is None:
            found = self._metrics_by_endpoint[endpoint] = self.metrics.tagged(endpoint=endpoint)
        return found

    def _failed(self, exchange: _Exchange, error: PatsnapError, sent: bool) -> None:
        """Count a failed exchange (a call that was sent) and tell whom the exchange tells."""
        if sent:
            if isinstance(error, PatsnapRateLimitError):
                self.stats.add("rate_limited")
                self.metrics.incr(RATE_LIMITED, endpoint=exchange.endpoint)
            self.metrics.incr(ERRORS, endpoint=exchange.endpoint, error_class=type(error).__name__)
        if exchange.after_failure is not None:
            exchange.after_failure(error)

    def _exchange(self, exchange: _Exchange, slot_taken: bool, may_renew_token: bool) -> Any:
        sent = False
        if not slot_taken:
            self.rate_limiter.acquire(self.cancellation.sleep)
        try:
            if exchange.before_send is not None:
                self.auth.bearer()  # a token endpoint that fails fails here, with nothing sent
                self.cancellation.check()
                exchange.before_send()
            sent = True
            self.stats.add("calls")
            metrics = self._metrics(exchange.endpoint)
            metrics.incr(CALLS)
            started = time.perf_counter()
            try:
                response = self.send(
                    exchange.method,
                    f"{self.settings.base_url}{exchange.path}",
                    exchange.description,
                    auth=self.auth,
                    **exchange.kwargs,
                )
            finally:
                metrics.timing(CALL_DURATION, time.perf_counter() - started)
            body = parse_body(response.content)
            envelope = body.value if isinstance(body.value, Mapping) else None
            if envelope is not None and envelope.get("status") is True and response.ok:
                self.rate_limiter.speed_up()
                return envelope.get("data")
            error = error_from_response(response, body, exchange.description, self.scrubber)
        except PatsnapError as failure:
            self._failed(exchange, failure, sent)
            raise
        self._failed(exchange, error, sent)
        token_error = isinstance(error, PatsnapAuthError) and (
            error.error_code in TOKEN_CODES or (error.error_code is None and error.http_status == 401)
        )
        if may_renew_token and token_error and self.auth.renew(response.request):
            raise _TokenRenewed(error)
        raise error

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add("retries")
        self.metrics.incr(RETRIES)
        error = state.outcome.exception() if state.outcome else None
        sleep = state.next_action.sleep if state.next_action else 0.0
        if isinstance(error, PatsnapRateLimitError):
            self.rate_limiter.pause(sleep)
            self.rate_limiter.slow_down()
        self.log.warning(
            "Retrying in %.1f s (attempt %d of %d): %s",
            sleep,
            state.attempt_number + 1,
            self.settings.max_retries + 1,
            error,
        )

    def call(
        self,
        method: str,
        path: str,
        description: str,
        *,
        idempotent: bool = True,
        slot_taken: bool = False,
        endpoint: str = "",
        before_send: Callable[[], None] | None = None,
        after_failure: Callable[[PatsnapError], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """:meth:`call_once`, retried with backoff while the failure is transient (see ``idempotent``).

        ``slot_taken``: the first attempt's rate-limit slot was already waited for; retries take their own.
        ``before_send`` and ``after_failure``: see :meth:`call_once` (a paid create records its attempt
        there; a metered data call reserves its units there and settles them).
        """
        retryable = PatsnapTransientError if idempotent else PatsnapRateLimitError
        retrying = Retrying(
            retry=retry_if_exception(lambda error: isinstance(error, retryable)),
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=retry_wait,
            sleep=self.cancellation.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        kwargs["params"] = {**(kwargs.get("params") or {}), "apikey": self.settings.apikey}
        first_slot_taken = slot_taken

        def attempt() -> Any:
            nonlocal first_slot_taken
            taken, first_slot_taken = first_slot_taken, False
            return self.call_once(
                method,
                path,
                description,
                slot_taken=taken,
                endpoint=endpoint,
                before_send=before_send,
                after_failure=after_failure,
                **kwargs,
            )

        return retrying(attempt)
