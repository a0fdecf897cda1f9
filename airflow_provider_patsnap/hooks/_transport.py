"""The wire under :class:`~airflow_provider_patsnap.hooks.patsnap.PatsnapHook`: one place for HTTP.

Rate limit → authentication (bearer token or ``sk-`` key, and the ``apikey`` query value) → HTTP with a
wall-clock deadline → the response envelope → a typed error or the payload, retried when transient.
Tokens and rate limiters are shared per PatSnap identity for the whole process; ``reset_shared_state``
forgets them. Every wait reads an injectable clock and can be cancelled.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from airflow_provider_patsnap import __version__
from airflow_provider_patsnap.connection import ConnectionSettings
from airflow_provider_patsnap.exceptions import (
    TOKEN_CODES,
    PatsnapAuthError,
    PatsnapError,
    PatsnapRateLimitError,
    PatsnapTransientError,
)
from airflow_provider_patsnap.hooks._auth import PatsnapAuth
from airflow_provider_patsnap.hooks._cancel import Cancellation, SystemClock
from airflow_provider_patsnap.hooks._deadline import DeadlineAdapter, deadline, remaining
from airflow_provider_patsnap.hooks._envelope import error_from_response, parse_body, parse_token_response
from airflow_provider_patsnap.hooks._scrub import Scrubber
from airflow_provider_patsnap.hooks._session import EnvironmentOnceSession

Clock = Callable[[], float]
TOKEN_PATH = "/oauth/token"
TOKEN_REFRESH_MARGIN = 60.0
CONNECT_TIMEOUT = 10.0
MAX_RETRY_WAIT = 60.0
#: After refusals for going too fast, calls are spaced at most this many times ``1/qps`` apart.
MAX_SLOWDOWN = 4.0
#: After a failed token request, every thread waiting for a token gets that failure for this long.
TOKEN_FAILURE_BACKOFF = 2.0
USER_AGENT = f"airflow-provider-patsnap/{__version__} requests/{requests.__version__}"

log = logging.getLogger(__name__)


_clock: Any = SystemClock()


class RateLimiter:
    """Spaces calls at least ``1/qps`` apart across every thread that shares it (0 means unlimited).

    Even spacing rather than bursts: the vendor's QPS window is not published, and a burst at a window
    edge is what gets a 67200002 back.
    """

    def __init__(self, qps: float, clock: Clock | None = None) -> None:
        clock = clock or _clock.monotonic
        self.interval = self.base_interval = 1.0 / qps if qps > 0 else 0.0
        self._clock = clock
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; return the seconds to wait before using it."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        return slot - now

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> None:
        wait = self.reserve()
        if wait > 0:
            sleep(wait)

    def pause(self, seconds: float) -> None:
        """PatSnap said "too fast": hold every thread's next call, not only the one that was told."""
        with self._lock:
            self._next_slot = max(self._next_slot, self._clock() + seconds)

    def slow_down(self) -> None:
        """PatSnap said "too fast" at this spacing: widen it, up to :data:`MAX_SLOWDOWN` times ``1/qps``.

        Without it a client whose ``qps`` is above its quota keeps getting every other call refused, and
        a retry can keep landing on a refused beat until its retries run out.
        """
        with self._lock:
            self.interval = min(self.interval * 1.5, self.base_interval * MAX_SLOWDOWN)

    def speed_up(self) -> None:
        """A call passed: narrow a widened spacing a little, back towards ``1/qps``."""
        if self.interval > self.base_interval:
            with self._lock:
                self.interval = max(self.base_interval, self.interval * 0.98)


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class _TokenFailure:
    error: PatsnapError
    until: float


class TokenCache:
    """One token per identity for the whole process, fetched by one thread while the others wait.

    When the token endpoint fails, the threads that were waiting (and any arriving within
    :data:`TOKEN_FAILURE_BACKOFF`) get that failure instead of asking again, so a revoked token never
    turns into a storm of token requests.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or _clock.monotonic
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self._failure: _TokenFailure | None = None

    def get(self, fetch: Callable[[], tuple[str, float]]) -> str:
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._token.expires_at:
                return self._token.value
            if self._failure is not None and now < self._failure.until:
                raise copy.copy(self._failure.error)
            try:
                value, ttl = fetch()
            except PatsnapError as error:
                self._failure = _TokenFailure(error, self._clock() + TOKEN_FAILURE_BACKOFF)
                raise
            self._failure = None
            margin = min(TOKEN_REFRESH_MARGIN, ttl / 2)
            self._token = _Token(value, self._clock() + ttl - margin)
            return value

    def invalidate(self, value: str) -> None:
        """Drop ``value`` unless another thread already replaced it."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None


_SHARED_LOCK = threading.Lock()
_TOKEN_CACHES: dict[tuple[str, ...], TokenCache] = {}
_RATE_LIMITERS: dict[tuple[str, str, float], RateLimiter] = {}


def reset_shared_state(clock: Any = None) -> None:
    """Forget every process-wide token and rate limiter (tests; a process that changes credentials).

    ``clock`` (an object with ``monotonic()`` and ``wait(event, seconds)``) times what is created from
    now on: rate limits, token lifetimes, backoff and polling waits; ``None`` means real time.
    """
    global _clock
    with _SHARED_LOCK:
        _TOKEN_CACHES.clear()
        _RATE_LIMITERS.clear()
        _clock = clock or SystemClock()


def shared_token_cache(settings: ConnectionSettings) -> TokenCache:
    key = (*settings.identity, str(hash(settings.client_secret)))
    with _SHARED_LOCK:
        return _TOKEN_CACHES.setdefault(key, TokenCache())


def shared_rate_limiter(settings: ConnectionSettings) -> RateLimiter:
    key = (*settings.identity, settings.qps)
    with _SHARED_LOCK:
        return _RATE_LIMITERS.setdefault(key, RateLimiter(settings.qps))


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0
    token_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)


def retry_wait(state: RetryCallState) -> float:
    """``Retry-After`` when the server sent one, else tenacity's jittered exponential backoff."""
    error = state.outcome.exception() if state.outcome else None
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return float(min(retry_after, MAX_RETRY_WAIT))
    return float(wait_exponential_jitter(multiplier=0.5, max=MAX_RETRY_WAIT, jitter=0.5)(state))


class Transport:
    """Sends PatSnap calls for one hook: session, auth, rate limit, deadline, envelope and retries."""

    def __init__(self, settings: ConnectionSettings, logger: Any = None) -> None:
        self.settings = settings
        self.log = logger or log
        self.scrubber = Scrubber(settings.secrets, (settings.client_id or "", settings.client_secret or ""))
        self.stats = CallStats()
        self.clock = _clock
        self.cancellation = Cancellation(self.clock)
        self.rate_limiter = shared_rate_limiter(settings)
        self.auth = PatsnapAuth(settings, shared_token_cache(settings), self.fetch_token)
        self.session = self.new_session(pool_size=settings.concurrency + 4)

    def new_session(self, pool_size: int = 4) -> requests.Session:
        """A session with our TLS, proxy, User-Agent and deadline settings, and no credentials."""
        session = EnvironmentOnceSession()
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
                    f"PatSnap {description} failed: {reason}"
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
        parsed = parse_token_response(body.value) if response.ok else None
        if parsed is None:
            raise error_from_response(response, body, "token request", self.scrubber)
        token, ttl = parsed
        self.scrubber.add(token)
        self.log.info("Fetched a PatSnap access token valid for %.0f s", ttl)
        return token, ttl

    def call_once(
        self,
        method: str,
        path: str,
        description: str,
        *,
        slot_taken: bool = False,
        before_send: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One call, repeated once with a new token when PatSnap rejects the token.

        ``slot_taken``: the caller already waited for this call's rate-limit slot (a token renewal
        still takes its own). ``before_send``: called when only sending is left (the slot waited for,
        the token in hand, the task not stopped), before each request goes out.
        """
        for renewed in (False, True):
            if renewed or not slot_taken:
                self.rate_limiter.acquire(self.cancellation.sleep)
            if before_send is not None:
                self.auth.bearer()  # a token endpoint that fails fails here, with nothing sent
                self.cancellation.check()
                before_send()
            self.stats.add("calls")
            response = self.send(
                method, f"{self.settings.base_url}{path}", description, auth=self.auth, **kwargs
            )
            body = parse_body(response.content)
            envelope = body.value if isinstance(body.value, Mapping) else None
            if envelope is not None and envelope.get("status") is True and response.ok:
                self.rate_limiter.speed_up()
                return envelope.get("data")
            error = error_from_response(response, body, description, self.scrubber)
            token_error = isinstance(error, PatsnapAuthError) and (
                error.error_code in TOKEN_CODES or (error.error_code is None and error.http_status == 401)
            )
            if renewed or not token_error or not self.auth.renew(response.request):
                raise error
            self.log.info("PatSnap rejected the token (error_code=%s); fetching a new one", error.error_code)
        raise PatsnapError(f"PatSnap {description}: no answer")  # the loop always returns or raises

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.add("retries")
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
        before_send: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """:meth:`call_once`, retried with backoff while the failure is transient (see ``idempotent``).

        ``slot_taken``: the first attempt's rate-limit slot was already waited for; retries take their own.
        ``before_send``: see :meth:`call_once` (a paid create records its attempt there).
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
                method, path, description, slot_taken=taken, before_send=before_send, **kwargs
            )

        return retrying(attempt)
