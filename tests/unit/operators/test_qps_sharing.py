"""Without the Redis-shared limiter, a task says when tasks like it could together call faster than the
connection's qps: no pool of its own, or a pool whose slots x qps is over it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_patsnap.operators import _batch
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator


class Lines:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.infos: list[str] = []

    def warning(self, message: str, *args: Any) -> None:
        self.warnings.append(message % args)

    def info(self, message: str, *args: Any) -> None:
        self.infos.append(message % args)


def check(
    monkeypatch: pytest.MonkeyPatch, *, qps: float, vendor_qps: float, redis: str | None = None, **kwargs: Any
) -> Lines:
    lines = Lines()
    operator = PatsnapAwardOperator(task_id="t", patent_numbers=["CN1A"], **kwargs)
    monkeypatch.setattr(PatsnapAwardOperator, "log", property(lambda self: lines))
    hook = SimpleNamespace(
        settings=SimpleNamespace(qps=qps, rate_limit_redis_conn_id=redis), connection_qps=vendor_qps
    )
    operator._check_qps_sharing(hook)  # type: ignore[arg-type]
    return lines


def test_no_pool_of_its_own_names_the_arithmetic(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = check(monkeypatch, qps=5, vendor_qps=5)
    [warning] = lines.warnings
    assert "qps=5 in no pool of its own: N such tasks running at once call at N x 5" in warning
    assert "rate_limit_redis_conn_id" in warning


def test_the_shared_limiter_needs_no_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = check(monkeypatch, qps=5, vendor_qps=5, redis="redis_default")
    assert lines.warnings == lines.infos == []


def test_a_pool_too_large_for_the_qps_is_named_where_its_size_can_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_batch, "pool_slots", lambda name: 4)
    lines = check(monkeypatch, qps=2.5, vendor_qps=5, pool="patsnap_api")
    [warning] = lines.warnings
    assert "Pool 'patsnap_api' has 4 slot(s); at qps=2.5 per 1 slot(s), tasks in it may call at 10" in warning
    assert "lower qps to 1.25 or the pool to 2 slot(s)" in warning
    monkeypatch.setattr(_batch, "pool_slots", lambda name: 2)
    assert check(monkeypatch, qps=2.5, vendor_qps=5, pool="patsnap_api").warnings == []


def test_on_airflow_3_a_pool_s_size_is_unknown_and_the_rule_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_batch, "pool_slots", lambda name: None)
    lines = check(monkeypatch, qps=2.5, vendor_qps=5, pool="patsnap_api")
    assert (
        lines.warnings == []
        and "slots x qps per slot (2.5) must stay <= the connection's qps 5" in lines.infos[0]
    )


def test_the_connection_qps_is_read_whatever_the_task_overrides(
    vendor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        '{"conn_type": "patsnap", "host": "https://patsnap.test", "login": "a", "password": "b", "extra": {"qps": 5}}',
    )
    hook = PatsnapHook(qps=2.5)
    assert (hook.settings.qps, hook.connection_qps) == (2.5, 5)
    assert PatsnapHook().connection_qps == 5
