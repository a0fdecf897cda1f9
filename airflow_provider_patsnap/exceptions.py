"""Every public error of the provider, in one hierarchy (docs/errors.md shows it).

:class:`PatsnapError` is the root. Under it, :class:`PatsnapInputError` is bad input or settings, refused
before any call to PatSnap; the others are failures reported by (or on the way to) PatSnap. The vendor's
error codes arrive in the response envelope (``status``, ``error_code``, ``error_msg``); whether an error
also carries a 4xx/5xx status is undocumented, so :func:`error_class_for` looks at the body first and at
the HTTP status when the body says nothing it knows.

Errors that no retry can fix are :class:`AirflowFailException` s too, so Airflow does not retry the task
(and pay again for the batches fetched before the failure).
"""

from __future__ import annotations

from typing import Any

from airflow.exceptions import AirflowException

from airflow_provider_patsnap._compat import AirflowFailException


class PatsnapError(AirflowException):
    """The root of every error this provider raises. Never carries a secret.

    Raised as itself for an answer PatSnap sent with an error code it does not document.
    """

    def __init__(
        self,
        message: str,
        *,
        error_code: int | None = None,
        http_status: int | None = None,
        vendor_message: str | None = None,
        retry_after: float | None = None,
        answer_lost: bool = False,
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.http_status = http_status
        self.vendor_message = vendor_message
        self.retry_after = retry_after
        #: The request may have reached PatSnap and its answer was lost (a read timeout, a connection cut
        #: after sending, a gateway's 5xx): what it did, and billed, is unknown.
        self.answer_lost = answer_lost


class PatsnapInputError(PatsnapError, AirflowFailException, ValueError):
    """Bad input or settings of a task: it fails at once, before any call, because a retry would fail the
    same way."""


class PatsnapConnectionError(PatsnapInputError):
    """A connection's host, credentials or extras are unusable; the message names the bad value."""


class InvalidPatentIdsError(PatsnapInputError):
    """Input ids that PatSnap would reject or that would break a comma-separated batch."""


class InvalidDestinationError(PatsnapInputError):
    """A table name or output path that cannot be used as given."""


class TableMismatchError(PatsnapInputError):
    """An existing table cannot take the rows: it lacks columns or the unique key the upsert needs."""


class RowLimitExceededError(PatsnapInputError):
    """More rows than XCom should carry: the rows belong in a table or a file."""


class UnsupportedDatabaseError(PatsnapInputError):
    """A SQL destination on a database the SQL sink does not write to (it writes to SQLite, PostgreSQL,
    MySQL/MariaDB and DuckDB); refused before any call, naming the database (docs/destinations.md)."""


class PatsnapTransientError(PatsnapError):
    """Busy server, rate limit, 5xx, dropped connection or read timeout: retried with backoff."""


class PatsnapRateLimitError(PatsnapTransientError):
    """Calls came faster than the client's QPS (67200002 or HTTP 429)."""


class PatsnapFailFastError(PatsnapError, AirflowFailException):
    """A failure that a retry would repeat: the task fails at once, whatever its ``retries``."""


class PatsnapAuthError(PatsnapFailFastError):
    """Bad credentials or an expired token; a token is refreshed once before this is raised."""


class PatsnapQuotaError(PatsnapFailFastError):
    """Total, balance, expiry or daily limits reached: no retry will help today."""


class PatsnapRejectsError(PatsnapFailFastError):
    """More vendor records than ``max_rejects`` could not become rows; raised after the rest landed."""


class PatsnapPermissionError(PatsnapFailFastError):
    """The client has no permission for this API."""


class PatsnapInvalidRequestError(PatsnapFailFastError):
    """The request itself is wrong (unknown path, illegal request, missing apikey): a bug to report."""


class PatsnapInvalidInputError(PatsnapInvalidRequestError):
    """PatSnap rejected the parameter values (68300004 / 68300007)."""


class PatsnapReportError(PatsnapFailFastError):
    """A report job failed, or its download link can no longer be used."""


class PatsnapBudgetError(PatsnapFailFastError):
    """The next call could bill more than ``max_billed_units``: it was not sent.

    ``not_fetched``: how many ids no answer came back for when the run stopped. ``summary``: what the
    data task would have returned (rows written and units billed so far), when a task raised it.
    """

    def __init__(self, message: str, *, not_fetched: int = 0, summary: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.not_fetched = not_fetched
        self.summary = summary


class PatsnapCancelledError(PatsnapError):
    """The task is being stopped (``on_kill``): no further call is made."""


class TableLockTimeoutError(PatsnapError):
    """A table's write lock (MySQL/MariaDB ``GET_LOCK``) was not granted within the server's
    ``lock_wait_timeout``: the write is repeated like a deadlock; after the last attempt the task fails
    and its ``retries`` apply."""


TRANSIENT_CODES = frozenset({67200100, 68300008})
RATE_LIMIT_CODES = frozenset({67200002})
TOKEN_CODES = frozenset({67200003, 67200009})  # a fresh token may fix these
QUOTA_CODES = frozenset({67200000, 67200001, 67200005, 67200006, 67200007})
PERMISSION_CODES = frozenset({67200004})
INVALID_INPUT_CODES = frozenset({68300004, 68300007})
INVALID_REQUEST_CODES = frozenset({67200008, 67200012, 67200101, 68300005, 68300006, 68300010})

_ADVICE: dict[type[PatsnapError], str] = {
    PatsnapRateLimitError: "calls exceed the client's QPS; lower the connection's `qps` extra",
    PatsnapTransientError: "PatSnap is busy or unreachable; retried with backoff",
    PatsnapAuthError: "check the connection's client id and secret (or sk- API key)",
    PatsnapQuotaError: "the account's quota, balance, validity or daily limit is exhausted; contact PatSnap",
    PatsnapPermissionError: "this client has no permission for this API; contact PatSnap",
    PatsnapInvalidInputError: "PatSnap rejected the parameter values",
    PatsnapInvalidRequestError: "PatSnap rejected the request",
    PatsnapError: "unexpected PatSnap error",
}


def error_class_for(error_code: int | None, http_status: int | None) -> type[PatsnapError]:
    """Map an envelope error code (preferred) or an HTTP status to the class that decides behaviour."""
    for codes, cls in (
        (RATE_LIMIT_CODES, PatsnapRateLimitError),
        (TRANSIENT_CODES, PatsnapTransientError),
        (TOKEN_CODES, PatsnapAuthError),
        (QUOTA_CODES, PatsnapQuotaError),
        (PERMISSION_CODES, PatsnapPermissionError),
        (INVALID_INPUT_CODES, PatsnapInvalidInputError),
        (INVALID_REQUEST_CODES, PatsnapInvalidRequestError),
    ):
        if error_code in codes:
            return cls
    # An unknown code decides nothing by itself: a 429 or 5xx around it is still transient.
    if http_status == 429:
        return PatsnapRateLimitError
    if http_status is not None and (http_status >= 500 or http_status == 408):
        return PatsnapTransientError
    if http_status == 401:
        return PatsnapAuthError
    if http_status == 403:
        return PatsnapPermissionError
    if http_status is not None and http_status >= 400 and not error_code:
        return PatsnapInvalidRequestError
    return PatsnapError


def build_error(
    *,
    error_code: int | None,
    http_status: int | None,
    vendor_message: str | None,
    context: str,
    retry_after: float | None = None,
) -> PatsnapError:
    """Create the typed error with a message that says what happened and what to do."""
    cls = error_class_for(error_code, http_status)
    parts = [f"PatSnap {context} failed"]
    if error_code:
        parts.append(f"error_code={error_code}")
    if http_status is not None:
        parts.append(f"HTTP {http_status}")
    message = ", ".join(parts)
    if vendor_message:
        message += f": {vendor_message}"
    message += f" ({_ADVICE[cls]})"
    return cls(
        message,
        error_code=error_code,
        http_status=http_status,
        vendor_message=vendor_message,
        retry_after=retry_after,
    )
