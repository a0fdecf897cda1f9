"""What every hook in the process shares: one token per PatSnap identity, one rate limiter per
identity and QPS, and the clock every wait reads; and the cancellation that cuts a hook's waits short.
:func:`reset_shared_state` forgets what is shared.

The rate limiter is this process's (:class:`RateLimiter`) unless the connection names a Redis connection
in ``rate_limit_redis_conn_id``: then one limit for every process of the deployment (``_redis_limiter``,
loaded only then). Standard library only, so what a DAG file imports never pulls in the HTTP stack.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_patsnap.connection import ConnectionSettings
from airflow_provider_patsnap.exceptions import PatsnapCancelledError, PatsnapError


class SystemClock:
    """Real time. Tests install a fake one with :func:`reset_shared_state` so waits cost nothing."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` for ``event``; True when it was set."""
        return event.wait(seconds)


class Cancellation:
    """Set once the task is being killed: no new call starts and every wait ends at once.

    ``clock`` times :meth:`sleep`; a hook creates its cancellation before it has a transport (so a cancel
    during a slow ``get_connection`` is not lost) and gives it the transport's clock once there is one.
    """

    def __init__(self, clock: Any = None) -> None:
        self._event = threading.Event()
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._listeners: list[Callable[[], None]] = []

    def on_cancel(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` on :meth:`cancel` (at once if already cancelled); return what unregisters it."""
        with self._lock:
            self._listeners.append(listener)
        if self._event.is_set():
            listener()

        def unregister() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unregister

    def watch(self, sock: socket.socket) -> None:
        """Remember a socket a call uses, to shut it down on :meth:`cancel` (at once if that came first:
        a call that passed :meth:`check` just before the cancel sends nothing more)."""
        with self._lock:
            self._sockets.add(sock)
        if self._event.is_set():
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed

    def cancel(self) -> None:
        """No new call or wait; calls in flight end now (their sockets are shut down under them)."""
        self._event.set()
        with self._lock:
            sockets, listeners = list(self._sockets), list(self._listeners)
        for listener in listeners:
            listener()
        for sock in sockets:
            self._shut(sock)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise PatsnapCancelledError("the task was stopped: no further PatSnap call is made")

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` unless cancelled first (then raise)."""
        if seconds > 0:
            self.clock.wait(self._event, seconds)
        self.check()


Clock = Callable[[], float]
TOKEN_REFRESH_MARGIN = 60.0
#: After refusals for going too fast, calls are spaced at most this many times ``1/qps`` apart.
MAX_SLOWDOWN = 4.0
#: After a failed token request, every thread waiting for a token gets that failure for this long.
TOKEN_FAILURE_BACKOFF = 2.0

_clock: Any = SystemClock()


class RateLimit(Protocol):
    """What the transport and the lookup pipeline use of a rate limiter, whichever holds its schedule."""

    def reserve(self) -> float:
        """Take the next slot; return the seconds to wait before using it."""
        ...

    def acquire(self, sleep: Callable[[float], None] = ...) -> None: ...

    def pause(self, seconds: float) -> None: ...

    def slow_down(self) -> None: ...

    def speed_up(self) -> None: ...

    @property
    def late_slot(self) -> float | None:
        """Seconds after its slot a lookup may still use it (None: however late)."""
        ...


class RateLimiter:
    """Spaces calls at least ``1/qps`` apart across every thread that shares it (0 means unlimited).

    Even spacing rather than bursts: the vendor's QPS window is not published, and a burst at a window
    edge is what gets a 67200002 back.
    """

    #: A late slot only brings this process's next call forward (the one after starts from now): used.
    late_slot: float | None = None

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
_RATE_LIMITERS: dict[tuple[Any, ...], RateLimit] = {}


def reset_shared_state(clock: Any = None) -> None:
    """Forget every process-wide token and rate limiter (tests; a process that changes credentials).

    ``clock`` (an object with ``monotonic()`` and ``wait(event, seconds)``) times what is created from
    now on: rate limits, token lifetimes, backoff and polling waits; ``None`` means real time.
    """
    global _clock
    with _SHARED_LOCK:
        limiters = list(_RATE_LIMITERS.values())
        _TOKEN_CACHES.clear()
        _RATE_LIMITERS.clear()
        _clock = clock or SystemClock()
    for limiter in limiters:  # a Redis limiter's sockets
        close = getattr(limiter, "close", None)
        if close is not None:
            close()


def shared_token_cache(settings: ConnectionSettings) -> TokenCache:
    key = (*settings.identity, str(hash(settings.client_secret)))
    with _SHARED_LOCK:
        return _TOKEN_CACHES.setdefault(key, TokenCache())


def shared_rate_limiter(settings: ConnectionSettings) -> RateLimit:
    """This process's limiter for the identity and qps, or with ``rate_limit_redis_conn_id`` the one
    shared through Redis (checked when first made: a Redis that cannot be used fails here, before any
    call). ``qps`` 0 sets no limit, so it needs no Redis."""
    key: tuple[Any, ...] = (*settings.identity, settings.qps)
    if settings.rate_limit_redis_conn_id and settings.qps > 0:
        key = (*key, settings.rate_limit_redis_conn_id)
        with _SHARED_LOCK:
            found, clock = _RATE_LIMITERS.get(key), _clock
        if found is not None:
            return found
        from airflow_provider_patsnap.hooks._redis_limiter import redis_rate_limiter

        made = redis_rate_limiter(settings, clock)  # talks to Redis: outside the lock
        with _SHARED_LOCK:
            kept = _RATE_LIMITERS.setdefault(key, made)
        if kept is not made:  # another thread made one first
            made.close()
        return kept
    with _SHARED_LOCK:
        return _RATE_LIMITERS.setdefault(key, RateLimiter(settings.qps))


def current_clock() -> Any:
    """The clock installed by the last :func:`reset_shared_state` (real time unless a test froze it)."""
    return _clock
