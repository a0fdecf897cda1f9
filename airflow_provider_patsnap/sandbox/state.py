"""The sandbox's mutable state: its clock, the QPS bucket, issued tokens, the fault draw and the ledger.

Everything that depends on time reads one :class:`SandboxClock`, so ``Sandbox.advance(seconds)`` can
expire a token, refill the bucket or finish a report job without anyone sleeping.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple


class SandboxClock:
    """Real time plus an offset: ``advance()`` moves both readings forward, never back."""

    def __init__(
        self, monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time
    ) -> None:
        self._monotonic = monotonic
        self._wall = wall
        self._offset = 0.0
        self._lock = threading.Lock()

    @classmethod
    def frozen(cls) -> SandboxClock:
        """A clock that stands still until ``advance()`` moves it: the rate limit refills, tokens and
        links age and report jobs progress only when a test says so.

        It stands at this moment's readings rounded down to whole seconds, so that sums of whole-second
        advances are exact: ``advance(ttl)`` after an issue lands exactly on the deadline, not a
        rounding error before it.
        """
        monotonic, wall = float(math.floor(time.monotonic())), float(math.floor(time.time()))
        return cls(monotonic=lambda: monotonic, wall=lambda: wall)

    def now(self) -> float:
        """Monotonic seconds, for durations: token and link lifetimes, the bucket, job progress."""
        return self._monotonic() + self._offset

    def wall(self) -> float:
        """Epoch seconds, for what the vendor shows as dates (token issued_at, X-Amz-Date)."""
        return self._wall() + self._offset

    def advance(self, seconds: float) -> None:
        if not seconds >= 0:  # also refuses NaN
            raise ValueError(f"the clock only moves forward: seconds must be >= 0, got {seconds}")
        with self._lock:
            self._offset += seconds


class TokenBucket:
    """Server-side QPS limit: ``rate`` tokens a second, at most ``capacity`` saved up (the burst).

    A call is judged at the moment it arrived (``take(at=...)``), not when its handler thread gets to
    the limiter: under load that thread can wait for the interpreter for milliseconds, and calls that
    arrived evenly spaced would reach the limiter bunched. ``tolerance`` seconds of earliness are
    forgiven: a call that comes at most that long before the bucket holds a whole token for it
    borrows the rest from the next refill, so calls spaced exactly ``1/rate`` apart pass even when
    each one's arrival moves by a few milliseconds. In GCRA terms: emission interval ``1/rate``,
    limit ``(capacity - 1)/rate + tolerance``.
    """

    # Rounding in the clock's sums must not turn a whole token into 0.9999999999 of one.
    _EPSILON = 1e-9

    def __init__(
        self, rate: float, capacity: float, clock: Callable[[], float], tolerance: float = 0.0
    ) -> None:
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        self._rate = rate
        self._capacity = max(capacity, 1.0)  # below one token no call could ever pass
        self._threshold = 1.0 - tolerance * rate - self._EPSILON
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def take(self, at: float | None = None) -> bool:
        """One call arriving at ``at`` on the bucket's clock (now when None): True = it may pass."""
        with self._lock:
            now = self._clock() if at is None else at
            # Threads reach this lock out of arrival order: a call stamped before the last one judged
            # is judged at that one's time, so the refill never runs backwards.
            if now > self._last:
                self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
                self._last = now
            if self._tokens >= self._threshold:
                self._tokens -= 1
                return True
            return False


class CpuMeter:
    """CPU seconds the sandbox's threads spent serving requests, summed over those threads.

    Each thread measures its own CPU clock (``time.thread_time``) around the work and adds the
    difference, so time asleep (the latency, a ``slow`` fault, an idle keep-alive connection) costs
    nothing, and a sandbox running inside a test or benchmark process is not charged for the work
    of the other threads there.
    """

    def __init__(self, thread_clock: Callable[[], float] = time.thread_time) -> None:
        self._thread_clock = thread_clock
        self._seconds = 0.0
        self._lock = threading.Lock()

    @property
    def seconds(self) -> float:
        return self._seconds

    def start(self) -> float:
        """This thread's CPU clock now: hand it back to :meth:`stop` when the work is done."""
        return self._thread_clock()

    def stop(self, started: float) -> None:
        spent = self._thread_clock() - started
        with self._lock:
            self._seconds += spent


class IssuedToken(NamedTuple):
    client_id: str
    expires_at: float  # on the sandbox clock


class TokenStore:
    """Issued OAuth tokens and when each one dies."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, IssuedToken] = {}

    def issue(self, client_id: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            # Drop dead tokens here so a long soak does not grow the table without bound.
            self._tokens = {key: issued for key, issued in self._tokens.items() if issued.expires_at > now}
            self._tokens[token] = IssuedToken(client_id, now + self._ttl)
        return token

    def client_for(self, token: str) -> str | None:
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None or issued.expires_at <= self._clock():
            return None
        return issued.client_id

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


class Countdown:
    """How many more times something is to happen (armed by a test, used up one at a time)."""

    def __init__(self) -> None:
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return self._pending

    def arm(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        with self._lock:
            self._pending = count

    def take(self) -> bool:
        """True when it is to happen this time (and one fewer is left)."""
        with self._lock:
            if self._pending <= 0:
                return False
            self._pending -= 1
            return True


class LostCreateAnswers(Countdown):
    """How many more successful report creates are to be billed and then left unanswered."""


@dataclass(frozen=True)
class RequestRecord:
    """One request to the API server, as the sandbox saw it (never a secret: apikey is masked)."""

    arrival: float  # the sandbox clock (time.monotonic() + advance()) when the request had been read
    wall: float  # time.time() + advance() at the same moment
    method: str
    path: str
    params: dict[str, str]
    ids: tuple[str, ...]  # requested patent values (data endpoints, report create)
    http_status: int  # 0 = the connection was dropped without an answer
    error_code: int
    fault: str | None
    authorization_present: bool


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

    def add(self, seq: int, record: RequestRecord, category: str, billed: int) -> None:
        with self._lock:
            self._log.append((seq, record))
            self._counts["requests"] += 1
            self._counts[f"{category}_calls"] += 1
            self._counts["billed_units"] += billed
            self._statuses[str(record.http_status)] += 1
            if record.error_code:
                self._errors[str(record.error_code)] += 1
            if record.fault:
                self._faults[record.fault] += 1

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
                "report_answers_lost": counts["report_answers_lost"],
                "errors": dict(self._errors),
                "faults": dict(self._faults),
                "http_statuses": dict(self._statuses),
                "downloads": {"served": counts["downloads_served"], "rejected": counts["downloads_rejected"]},
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }
