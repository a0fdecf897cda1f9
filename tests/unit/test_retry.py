"""The retry policy the operators and the sensor default to: its decisions, and who gets it where."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_patsnap._compat import HAS_RETRY_POLICY
from airflow_provider_patsnap.exceptions import (
    InvalidPatentIdsError,
    PatsnapAuthError,
    PatsnapBudgetError,
    PatsnapCancelledError,
    PatsnapError,
    PatsnapInputError,
    PatsnapPermissionError,
    PatsnapQuotaError,
    PatsnapRateLimitError,
    PatsnapRejectsError,
    PatsnapReportError,
    PatsnapTransientError,
)
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.operators.report import (
    PatsnapCreateValueReportOperator,
    PatsnapDownloadReportOperator,
)
from airflow_provider_patsnap.report import lost_create_message
from airflow_provider_patsnap.retry import DEFAULT_MAX_DELAY, DEFAULT_RETRY_POLICY, PatsnapRetryPolicy
from airflow_provider_patsnap.sensors.patsnap import PatsnapReportSensor

POLICY = PatsnapRetryPolicy()


@pytest.mark.parametrize(
    "error",
    [
        PatsnapQuotaError("daily limit"),
        PatsnapPermissionError("no permission"),
        PatsnapAuthError("bad secret"),
        PatsnapInputError("bad input"),
        InvalidPatentIdsError("bad id"),
        PatsnapReportError(lost_create_message("CN1A", "recreate_after_lost_answer")),  # outcome unknown
        PatsnapBudgetError("max_billed_units reached"),
        PatsnapRejectsError("too many rejects"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_what_no_retry_can_fix_fails_now(error: Exception) -> None:
    verdict = POLICY.decide(error)
    assert verdict.action == "fail" and verdict.delay is None
    assert verdict.reason and type(error).__name__ in verdict.reason


def test_a_rate_limit_is_retried_after_its_retry_after() -> None:
    verdict = POLICY.decide(PatsnapRateLimitError("too fast", retry_after=7))
    assert (verdict.action, verdict.delay) == ("retry", timedelta(seconds=7))
    assert "7 s" in str(verdict.reason)


def test_a_transient_error_without_retry_after_keeps_the_tasks_own_delay() -> None:
    verdict = POLICY.decide(PatsnapTransientError("busy"))
    assert (verdict.action, verdict.delay) == ("retry", None)


@pytest.mark.parametrize(
    ("task", "retry_after", "expected"),
    [
        (None, 7200, DEFAULT_MAX_DELAY),  # no task: the policy's own bound
        (SimpleNamespace(max_retry_delay=None), 7200, DEFAULT_MAX_DELAY),
        (SimpleNamespace(max_retry_delay=timedelta(minutes=2)), 600, timedelta(minutes=2)),
        (SimpleNamespace(max_retry_delay=90.0), 600, timedelta(seconds=90)),  # seconds, as Airflow allows
        (SimpleNamespace(max_retry_delay=timedelta(hours=2)), 5400, timedelta(seconds=5400)),  # under it
        (None, -3, timedelta(0)),
    ],
)
def test_retry_after_is_capped_at_max_retry_delay_or_the_policys_bound(
    task: Any, retry_after: float, expected: timedelta
) -> None:
    verdict = POLICY.decide(PatsnapTransientError("busy", retry_after=retry_after), task)
    assert (verdict.action, verdict.delay) == ("retry", expected)


def test_a_policy_with_its_own_bound() -> None:
    policy = PatsnapRetryPolicy(max_delay=timedelta(seconds=5))
    assert policy.decide(PatsnapRateLimitError("x", retry_after=60)).delay == timedelta(seconds=5)
    assert PatsnapRetryPolicy.deserialize(policy.serialize()) == policy
    with pytest.raises(ValueError, match="max_delay"):
        PatsnapRetryPolicy(max_delay=30)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [PatsnapError("undocumented code"), PatsnapCancelledError("stopped"), RuntimeError("bug"), KeyError("k")],
    ids=lambda error: type(error).__name__,
)
def test_anything_else_is_left_to_airflow(error: Exception) -> None:
    assert POLICY.decide(error).action == "default"


def operators(**kwargs: Any) -> list[Any]:
    return [
        PatsnapAwardOperator(task_id="awards", patent_numbers=["CN1A"], **kwargs),
        PatsnapCreateValueReportOperator(task_id="create", patent_number="CN1A", **kwargs),
        PatsnapDownloadReportOperator(task_id="download", job_id="1", target="/reports", **kwargs),
        PatsnapReportSensor(task_id="wait", job_id="1", **kwargs),
    ]


@pytest.mark.skipif(not HAS_RETRY_POLICY, reason="retry policies arrived in Airflow 3.3")
def test_on_airflow_3_3_every_operator_defaults_to_the_policy_and_takes_another_or_none() -> None:
    from airflow.sdk import RetryDecision, RetryPolicy

    class Never(RetryPolicy):
        def evaluate(
            self, exception: BaseException, try_number: int, max_tries: int, context: Any = None
        ) -> Any:
            return RetryDecision.fail()

    never = Never()
    assert [op.retry_policy for op in operators()] == [DEFAULT_RETRY_POLICY] * 4
    assert [op.retry_policy for op in operators(retry_policy=never)] == [never] * 4
    assert [op.retry_policy for op in operators(retry_policy=None)] == [None] * 4


@pytest.mark.skipif(not HAS_RETRY_POLICY, reason="retry policies arrived in Airflow 3.3")
def test_on_airflow_3_3_default_args_and_mapped_tasks_get_it_too() -> None:
    from airflow.sdk import DAG

    with DAG("d", schedule=None, start_date=datetime(2024, 1, 1), default_args={"retry_policy": None}):
        from_default_args = PatsnapAwardOperator(task_id="awards", patent_numbers=["CN1A"])
    with DAG("m", schedule=None, start_date=datetime(2024, 1, 1)):
        mapped = PatsnapAwardOperator.partial(task_id="shards").expand(patent_numbers=[["CN1A"], ["CN2A"]])
    assert from_default_args.retry_policy is None
    assert mapped.partial_kwargs["retry_policy"] is DEFAULT_RETRY_POLICY


@pytest.mark.skipif(not HAS_RETRY_POLICY, reason="retry policies arrived in Airflow 3.3")
def test_on_airflow_3_3_airflow_gets_the_decisions_as_its_own() -> None:
    from airflow.sdk import RetryAction

    task = SimpleNamespace(max_retry_delay=timedelta(seconds=30))
    retried = POLICY.evaluate(
        exception=PatsnapRateLimitError("x", retry_after=90),
        try_number=1,
        max_tries=2,
        context={"task": task},
    )
    failed = POLICY.evaluate(exception=PatsnapQuotaError("x"), try_number=1, max_tries=2, context=None)
    left = POLICY.evaluate(exception=RuntimeError("x"), try_number=1, max_tries=2)
    assert (retried.action, retried.retry_delay) == (RetryAction.RETRY, timedelta(seconds=30))
    assert failed.action is RetryAction.FAIL and "PatsnapQuotaError" in str(failed.reason)
    assert left.action is RetryAction.DEFAULT


@pytest.mark.skipif(HAS_RETRY_POLICY, reason="Airflow 2.11-3.2 only")
def test_before_airflow_3_3_no_policy_reaches_airflow_and_nothing_else_changes() -> None:
    for op in [*operators(), *operators(retry_policy=None), *operators(retry_policy=PatsnapRetryPolicy())]:
        assert getattr(op, "retry_policy", None) is None  # Airflow was never given one
    with pytest.raises(ValueError, match=r"retry_policy needs Airflow 3\.3"):
        PatsnapAwardOperator(task_id="a", patent_numbers=["CN1A"], retry_policy=object())
    # What fails now still does, through AirflowFailException, as before.
    from airflow_provider_patsnap._compat import AirflowFailException

    assert isinstance(PatsnapQuotaError("x"), AirflowFailException)
    assert not isinstance(PatsnapRateLimitError("x"), AirflowFailException)
