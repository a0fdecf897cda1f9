"""One rate limit for a whole deployment, held in Redis (the ``rate_limit_redis_conn_id`` extra).

Every process that calls PatSnap as one identity (base URL + apikey) takes its slots from one schedule
in Redis: a "next free slot" scheduler (GCRA) that one Lua script runs atomically on Redis's own clock
(``TIME``), so workers whose clocks disagree still share one time base. A slot is ``max(now, next)``; the
script stores ``next = slot + interval`` and returns the slot, which the caller waits for on its own
(injectable, cancellable) clock. ``pause`` moves the shared next slot for every process; ``slow_down``
and ``speed_up`` widen and narrow one shared spacing factor (1 to :data:`MAX_SLOWDOWN`).

Redis holds no credential: the keys carry a SHA-256 digest of the identity, the values are numbers.

When Redis fails mid-run (after :data:`RETRY_WAITS`), the limiter keeps calling at a share it can prove
safe: the QPS divided by the limiters that took a slot in the last :data:`PEER_WINDOW` seconds (each
process would do the same), warns once, and asks Redis again every :data:`PROBE_INTERVAL` seconds. When
Redis cannot be reached at the start, :func:`redis_rate_limiter` fails before any call is made.

Standard library at import: ``redis`` and the Redis provider load when a limiter is built.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from airflow_provider_patsnap.connection import ConnectionSettings
from airflow_provider_patsnap.exceptions import PatsnapError, PatsnapFailFastError
from airflow_provider_patsnap.hooks._shared import MAX_SLOWDOWN

#: Seconds one Redis command may take (connect, or an answer): a reservation is a few hundred µs.
REDIS_TIMEOUT = 1.0
#: Waits between the tries of a Redis command that failed: three tries in all, then the fallback.
RETRY_WAITS = (0.05, 0.25)
#: While Redis is away, it is asked again at most this often (seconds).
PROBE_INTERVAL = 10.0
#: A limiter that took a slot within this many seconds counts as running (the fallback's divisor).
PEER_WINDOW = 120.0
#: A widened spacing that nobody narrowed or widened for this long is forgotten (seconds).
SLOWDOWN_TTL = 600
#: Spacing factors: a "too fast" answer widens, a passing call narrows (as the local limiter).
SLOW_DOWN, SPEED_UP = 1.5, 0.98
MICROSECONDS = 1_000_000
#: A process that wakes for its slot more than this many spacings late (and at least
#: :data:`LATE_SLOT_FLOOR` seconds) takes a new slot instead (:attr:`RedisRateLimiter.late_slot`).
LATE_SLOT_SPACINGS = 2
LATE_SLOT_FLOOR = 0.05

log = logging.getLogger(__name__)

# KEYS[1]: hash {next = next free slot, seen = Redis time it was written}, in µs of Redis's TIME.
# KEYS[2]: the shared spacing factor. KEYS[3]: sorted set of limiters by when they last took a slot
# (or were checked): how many share the QPS, should Redis go away.
# ARGV: op, base interval µs, limiter id, pause µs, peer window µs, most factor, factor ttl s.
# Integers travel as '%.0f' text and the factor as '%.17g' (exact), never as Lua's 14-digit tostring.
SCRIPT = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'next', 'seen')
local nxt = tonumber(state[1]) or 0
local seen = tonumber(state[2]) or now
if now < seen then nxt = nxt - (seen - now) end
local factor = tonumber(redis.call('GET', KEYS[2])) or 1
local op = ARGV[1]
local function store(n)
  redis.call('HSET', KEYS[1], 'next', string.format('%.0f', n), 'seen', string.format('%.0f', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((n - now) / 1000) + 1000)
end
local function keep(f)
  if f <= 1 then redis.call('DEL', KEYS[2])
  else redis.call('SET', KEYS[2], string.format('%.17g', f), 'EX', tonumber(ARGV[7])) end
end
local peers = 0
if op == 'reserve' or op == 'peek' then
  redis.call('ZADD', KEYS[3], now, ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[5]))
  redis.call('PEXPIRE', KEYS[3], math.ceil(tonumber(ARGV[5]) / 1000))
  peers = redis.call('ZCARD', KEYS[3])
end
if op == 'reserve' then
  local slot = math.max(now, nxt)
  store(slot + math.ceil(tonumber(ARGV[2]) * factor))
  nxt = slot
elseif op == 'pause' then
  local until_ = now + tonumber(ARGV[4])
  if until_ > nxt then store(until_) nxt = until_ end
elseif op == 'slow' then
  factor = math.min(factor * 1.5, tonumber(ARGV[6]))
  keep(factor)
elseif op == 'fast' then
  factor = math.max(1, factor * 0.98)
  keep(factor)
end
return {string.format('%.0f', now), string.format('%.0f', nxt), string.format('%.17g', factor), peers}
"""
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()


class Reservation(NamedTuple):
    """One answer of the schedule: ``slot`` is the slot taken (``reserve``) or the next free one, and
    ``now`` the time it was taken, both in µs of one clock: Redis's when ``shared``, else this process's."""

    now: int
    slot: int
    factor: float
    peers: int
    shared: bool = True

    @property
    def wait(self) -> float:
        """Seconds from ``now`` to ``slot``."""
        return max(0, self.slot - self.now) / MICROSECONDS


@dataclass
class SlotSchedule:
    """The scheduler :data:`SCRIPT` runs, in Python: the fallback runs it on this process's clock, and
    the tests hold the script to it. Times are integer µs; ``interval`` is the caller's ``1/qps``."""

    next: int = 0
    seen: int | None = None
    factor: float = 1.0

    def run(self, op: str, now: int, interval: int, pause: int = 0) -> Reservation:
        nxt = self.next
        if self.seen is not None and now < self.seen:  # the clock stepped back: keep the distance
            nxt -= self.seen - now
        if op == "reserve":
            slot = max(now, nxt)
            self.next, self.seen = slot + math.ceil(interval * self.factor), now
            return Reservation(now, slot, self.factor, 1, shared=False)
        if op == "pause" and now + pause > nxt:
            nxt = self.next = now + pause
            self.seen = now
        elif op == "slow":
            self.factor = min(self.factor * SLOW_DOWN, MAX_SLOWDOWN)
        elif op == "fast":
            self.factor = max(1.0, self.factor * SPEED_UP)
        return Reservation(now, nxt, self.factor, 0, shared=False)


def identity_keys(settings: ConnectionSettings) -> tuple[str, str, str]:
    """The Redis keys of one PatSnap identity: a digest of base URL and apikey, never the apikey. The
    ``{...}`` hash tag keeps the three keys in one slot of a Redis Cluster (a script's keys must be)."""
    base_url, apikey = settings.identity
    digest = hashlib.sha256(f"patsnap-rate-limit\n{base_url}\n{apikey}".encode()).hexdigest()[:32]
    prefix = f"patsnap:rate:{{{digest}}}"
    return (f"{prefix}:slot", f"{prefix}:factor", f"{prefix}:peers")


def _us(seconds: float) -> int:
    return math.ceil(seconds * MICROSECONDS)


def interval_us(qps: float) -> int:
    """``1/qps`` in whole µs, rounded up (never faster than qps) once float noise is dropped: 1/5 s is
    200000 µs, not 200001."""
    return math.ceil(round(MICROSECONDS / qps, 3))


class RedisRateLimiter:
    """The local :class:`~airflow_provider_patsnap.hooks._shared.RateLimiter`'s interface (it is a
    :class:`~airflow_provider_patsnap.hooks._shared.RateLimit`), its schedule shared through Redis.

    ``client`` is a redis-py client whose commands fail rather than wait (see :func:`bounded`); ``clock``
    (``monotonic()`` and ``wait(event, seconds)``) times the retries, the fallback and its probes.
    """

    def __init__(self, client: Any, settings: ConnectionSettings, clock: Any) -> None:
        self.redis_conn_id = settings.rate_limit_redis_conn_id or ""
        self.qps = settings.qps
        self.base_interval = 1.0 / settings.qps
        self._interval_us = interval_us(settings.qps)
        self._client = client
        self._keys = identity_keys(settings)
        self._member = uuid.uuid4().hex  # counted once among the running limiters, however many threads
        self._clock = clock
        self._lock = threading.Lock()
        self._factor, self._peers = 1.0, 1
        self._fallback: SlotSchedule | None = None
        self._fallback_interval = 0
        self._probe_at = 0.0

    # --- the RateLimit interface -------------------------------------------------------------------

    @property
    def interval(self) -> float:
        """The spacing this limiter keeps now (its share of it while Redis is away)."""
        if self._fallback is not None:
            return self._fallback_interval * self._fallback.factor / MICROSECONDS
        return self.base_interval * self._factor

    @property
    def late_slot(self) -> float:
        """How late (seconds) a lookup may wake for a slot and still use it.

        Every running process holds a slot ahead on the shared schedule. When the machine is too busy to
        run them for a moment, they wake together, and their calls would reach PatSnap within
        milliseconds of each other: ``make e2e-celery`` saw 6 calls in 31 ms after a 267 ms gap at qps
        20, and a 67200002. A slot this late is left unused instead (it is in the past; the calls of the
        later slots go out on time) and the batch takes the next free one.
        """
        return max(LATE_SLOT_SPACINGS * self.interval, LATE_SLOT_FLOOR)

    def reserve(self) -> float:
        """Take the next slot; return the seconds to wait before using it."""
        return self.take().wait

    def acquire(self, sleep: Callable[[float], None] | None = None) -> None:
        wait = self.reserve()
        if wait > 0:
            (sleep or (lambda seconds: self._clock.wait(threading.Event(), seconds)))(wait)

    def pause(self, seconds: float) -> None:
        """PatSnap said "too fast": hold every process's next call, not only this one's."""
        self._run("pause", _us(seconds))

    def slow_down(self) -> None:
        self._run("slow")

    def speed_up(self) -> None:
        if self._factor > 1 or self._fallback is not None:  # nothing to narrow: no round trip
            self._run("fast")

    def close(self) -> None:
        self._client.close()

    # --- schedule ----------------------------------------------------------------------------------

    def take(self) -> Reservation:
        """Take the next slot (shared; this process's share while Redis is away)."""
        return self._run("reserve")

    def check(self) -> Reservation:
        """Read the shared schedule (Redis's time, the next free slot) without taking a slot, and count
        this limiter as running; raise :class:`PatsnapError` naming the Redis connection when Redis
        cannot be used."""
        try:
            reservation = self._tried("peek", 0, len(RETRY_WAITS) + 1)
        except Exception as error:
            if not _is_redis_error(error):
                raise
            raise self._unusable(error) from None
        self._answered(reservation)
        return reservation

    def _run(self, op: str, pause: int = 0) -> Reservation:
        with self._lock:
            now = self._clock.monotonic()
            away = self._fallback is not None
            ask = not away or now >= self._probe_at
            if away and ask:  # one thread asks; the others keep to the share meanwhile
                self._probe_at = now + PROBE_INTERVAL
        if ask:
            try:
                reservation = self._tried(op, pause, 1 if away else len(RETRY_WAITS) + 1)
            except Exception as error:
                if not _is_redis_error(error):
                    raise
                self._lost(error)
            else:
                self._answered(reservation)
                return reservation
        with self._lock:
            fallback = self._fallback
            if fallback is not None:
                return fallback.run(op, _us(self._clock.monotonic()), self._fallback_interval, pause)
        return self._run(op, pause)  # Redis answered another thread meanwhile: back to the shared schedule

    def _tried(self, op: str, pause: int, tries: int) -> Reservation:
        args = (op, self._interval_us, self._member, pause, _us(PEER_WINDOW), MAX_SLOWDOWN, SLOWDOWN_TTL)
        for attempt in range(tries):
            try:
                return self._eval(args)
            except Exception as error:
                if not _is_redis_error(error) or attempt == tries - 1:
                    raise
                self._clock.wait(threading.Event(), RETRY_WAITS[min(attempt, len(RETRY_WAITS) - 1)])
        raise AssertionError("unreachable")  # pragma: no cover

    def _eval(self, args: tuple[Any, ...]) -> Reservation:
        from redis.exceptions import NoScriptError

        try:
            reply = self._client.evalsha(SCRIPT_SHA, len(self._keys), *self._keys, *args)
        except NoScriptError:  # a restarted or flushed Redis: EVAL caches it again
            reply = self._client.eval(SCRIPT, len(self._keys), *self._keys, *args)
        return Reservation(int(reply[0]), int(reply[1]), float(reply[2]), int(reply[3]))

    def _answered(self, reservation: Reservation) -> None:
        with self._lock:
            self._factor = reservation.factor
            if reservation.peers:
                self._peers = reservation.peers
            if self._fallback is None:
                return
            self._fallback = None
        log.warning(
            "Redis connection %r answers again: PatSnap calls share one rate limit again (qps=%g)",
            self.redis_conn_id,
            self.qps,
        )

    def _lost(self, error: BaseException) -> None:
        """Redis did not answer: limit this process to its share (qps / running limiters) for now."""
        now = self._clock.monotonic()
        with self._lock:
            self._probe_at = max(self._probe_at, now + PROBE_INTERVAL)
            if self._fallback is not None:
                return
            self._fallback_interval = math.ceil(self._interval_us * self._factor * self._peers)
            # Its first slot one share away: the processes that fall back together do not all call at once.
            self._fallback = SlotSchedule(next=_us(now) + self._fallback_interval)
        log.warning(
            "Redis connection %r of the shared PatSnap rate limit failed (%s); until it answers again "
            "(asked every %g s) this process calls at most %.3g times a second: qps=%g shared by the %d "
            "limiter(s) that were running",
            self.redis_conn_id,
            _describe(error),
            PROBE_INTERVAL,
            MICROSECONDS / self._fallback_interval,
            self.qps,
            self._peers,
        )

    def _unusable(self, error: BaseException) -> PatsnapError:
        return PatsnapError(
            f"The PatSnap rate limit shared through Redis connection {self.redis_conn_id!r} (extra "
            f"rate_limit_redis_conn_id) cannot be used: {_describe(error)}. No PatSnap call was made. Fix "
            "that Redis connection, or remove the extra to limit each task process on its own"
        )


def _is_redis_error(error: BaseException) -> bool:
    from redis.exceptions import RedisError

    return isinstance(error, RedisError | OSError)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).rstrip('. ')}"[:300]


def bounded(client: Any) -> Any:
    """``client`` with :data:`REDIS_TIMEOUT` on connecting and on each answer, and no retries of its own
    (redis-py 6+ retries 3 times with backoff on ``time.sleep``): the limiter retries on its clock."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    no_retry = Retry(NoBackoff(), 0)
    settings = {"socket_timeout": REDIS_TIMEOUT, "socket_connect_timeout": REDIS_TIMEOUT, "retry": no_retry}
    for owner in (client, getattr(client, "nodes_manager", None)):  # a Redis, or a RedisCluster's nodes
        kwargs = getattr(getattr(owner, "connection_pool", owner), "connection_kwargs", None)
        if isinstance(kwargs, dict):
            kwargs.update(settings)
    if callable(getattr(client, "set_retry", None)):
        client.set_retry(no_retry)
    return client


def redis_rate_limiter(settings: ConnectionSettings, clock: Any) -> RedisRateLimiter:
    """The shared limiter for ``settings``, its Redis checked: every failure to read the Redis connection
    or to run the script there is raised now, naming the connection, before any PatSnap call."""
    conn_id = settings.rate_limit_redis_conn_id or ""
    try:
        from airflow.providers.redis.hooks.redis import RedisHook
    except ImportError:
        raise PatsnapFailFastError(
            f"The extra rate_limit_redis_conn_id={conn_id!r} shares the PatSnap rate limit through Redis, "
            "which needs the Redis provider: pip install 'airflow-provider-patsnap[redis]' "
            "(apache-airflow-providers-redis). No PatSnap call was made"
        ) from None
    try:
        client = RedisHook(redis_conn_id=conn_id).get_conn()
    except Exception as error:
        missing = type(error).__name__ == "AirflowNotFoundException"
        raise (PatsnapFailFastError if missing else PatsnapError)(
            f"The PatSnap rate limit shared through Redis connection {conn_id!r} (extra "
            f"rate_limit_redis_conn_id) cannot be used: "
            + ("there is no Airflow connection with that id" if missing else _describe(error))
            + ". No PatSnap call was made"
        ) from None
    limiter = RedisRateLimiter(bounded(client), settings, clock)
    limiter.check()
    return limiter
