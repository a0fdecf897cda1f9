"""What Airflow should do after a task failed with one of this provider's errors: the operators' and the
sensor's default ``retry_policy`` (AIP-105, Airflow 3.3).

The decision follows the error's class (docs/errors.md):

- **fail, no Airflow retry**: :class:`PatsnapInputError` (bad input or settings) and every
  :class:`PatsnapFailFastError` (credentials, quota, permission, a request PatSnap calls invalid, a
  report failed or whose paid create has an unknown outcome, the budget reached, too many rejects);
- **retry**: :class:`PatsnapTransientError` (a rate limit, a busy or unreachable server), after the
  error's ``retry_after`` (PatSnap's ``Retry-After``) when it has one, capped at the task's
  ``max_retry_delay``, else at the policy's ``max_delay`` (30 minutes); without one, after the task's own
  ``retry_delay`` and backoff;
- **anything else** (an undocumented PatSnap error, a bug, a database error): Airflow's default.

A policy only chooses among the retries a task has: ``RETRY`` still needs ``retries`` left.

Why a module of its own rather than :mod:`.exceptions`, beside the classes it names: that module is the
error hierarchy every layer imports (the hook, the report rules, the sandbox's tests), with no Airflow
line logic of its own, while the policy is the operators' concern and exists only where Airflow has one.
:mod:`._compat` decides whether Airflow is handed it (:func:`._compat.retry_policy_kwargs`: 3.3+ only;
2.11-3.2 reject the argument) and gives the base class (a stand-in before 3.3), so the policy's
decisions (:meth:`PatsnapRetryPolicy.decide`, plain values) are tested on 2.11 too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, NamedTuple

from airflow_provider_patsnap._compat import RetryPolicy
from airflow_provider_patsnap.exceptions import PatsnapFailFastError, PatsnapInputError, PatsnapTransientError

#: The longest ``Retry-After`` honoured when the task sets no ``max_retry_delay``: Airflow does not cap
#: a policy's delay itself (``TaskInstance.next_retry_datetime`` takes it as given).
DEFAULT_MAX_DELAY = timedelta(minutes=30)

#: Errors no retry can fix. Each is an ``AirflowFailException`` as well, which every Airflow line fails
#: without consulting any policy: the two answers never disagree.
NO_RETRY: tuple[type[BaseException], ...] = (PatsnapInputError, PatsnapFailFastError)
RETRY: tuple[type[BaseException], ...] = (PatsnapTransientError,)


class RetryVerdict(NamedTuple):
    """A decision, as plain values: ``fail``, ``retry`` (after ``delay``; None: the task's own) or
    ``default`` (Airflow's usual rules)."""

    action: Literal["fail", "retry", "default"]
    delay: timedelta | None = None
    reason: str | None = None


class PatsnapRetryPolicy(RetryPolicy):
    """The provider's retry policy: by error class, honouring ``Retry-After`` (see the module's text).

    :param max_delay: The longest ``Retry-After`` honoured for a task without ``max_retry_delay``.
    """

    def __init__(self, max_delay: timedelta = DEFAULT_MAX_DELAY) -> None:
        if not isinstance(max_delay, timedelta) or max_delay < timedelta(0):
            raise ValueError(f"max_delay must be a timedelta >= 0, got {max_delay!r}")
        self.max_delay = max_delay

    def decide(self, exception: BaseException, task: Any = None) -> RetryVerdict:
        """What to do after ``exception``; ``task`` (the failed task) gives ``max_retry_delay``."""
        name = type(exception).__name__
        if isinstance(exception, NO_RETRY):
            return RetryVerdict("fail", reason=f"{name}: a retry would fail the same way")
        if isinstance(exception, RETRY):
            retry_after = getattr(exception, "retry_after", None)
            if retry_after is None:
                return RetryVerdict(
                    "retry", reason=f"{name}: transient, retried after the task's retry_delay"
                )
            cap = self._cap(task)
            delay = min(timedelta(seconds=max(0.0, float(retry_after))), cap)
            capped = " (capped)" if delay < timedelta(seconds=float(retry_after)) else ""
            return RetryVerdict(
                "retry",
                delay,
                f"{name}: PatSnap asked to retry after {retry_after:g} s; retrying in {delay}{capped}",
            )
        return RetryVerdict("default")

    def _cap(self, task: Any) -> timedelta:
        configured = getattr(task, "max_retry_delay", None)
        if isinstance(configured, timedelta):
            return configured
        if isinstance(configured, int | float) and not isinstance(configured, bool):
            return timedelta(seconds=configured)
        return self.max_delay

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int, context: Any = None) -> Any:
        """Airflow 3.3's entry point (its task runner calls it with keywords, on the worker)."""
        from airflow.sdk import RetryDecision

        verdict = self.decide(exception, (context or {}).get("task"))
        if verdict.action == "fail":
            return RetryDecision.fail(reason=verdict.reason)
        if verdict.action == "retry":
            return RetryDecision.retry(delay=verdict.delay, reason=verdict.reason)
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        return {"max_delay": self.max_delay.total_seconds()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> PatsnapRetryPolicy:
        return cls(timedelta(seconds=float(data.get("max_delay", DEFAULT_MAX_DELAY.total_seconds()))))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PatsnapRetryPolicy) and other.max_delay == self.max_delay

    def __hash__(self) -> int:
        return hash((type(self), self.max_delay))

    def __repr__(self) -> str:
        return f"PatsnapRetryPolicy(max_delay={self.max_delay!r})"


#: What the operators and the sensor default to (``retry_policy=None`` opts out).
DEFAULT_RETRY_POLICY = PatsnapRetryPolicy()
