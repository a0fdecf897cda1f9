"""pytest fixtures for testing DAGs offline against the PatSnap sandbox.

Enable with ``pytest -p airflow_provider_patsnap.testing.pytest_plugin`` or, in a ``conftest.py``,
``pytest_plugins = ["airflow_provider_patsnap.testing.pytest_plugin"]``. Then::

    def test_my_dag_task(patsnap_conn):
        rows = PatsnapAwardOperator(task_id="t", patent_numbers=["CN110650438A"]).execute({})

The module imports neither Airflow nor requests: pytest loads plugins before a conftest can set
``AIRFLOW_HOME``, and Airflow reads its configuration once, at first import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from airflow_provider_patsnap.sandbox import Sandbox, SandboxClock, SandboxConfig

CONN_ID = "patsnap_default"
#: Seconds a call through ``patsnap_conn`` may take in all (the connection's ``timeout``; 30 by default):
#: a sandbox that stalls costs a test seconds, not half a minute.
CONN_TIMEOUT = 5.0
#: Sandbox settings for tests: no latency and no rate limit, so a test runs as fast as the CPU allows,
#: and a ``slow`` fault stalls well within :data:`CONN_TIMEOUT` (the sandbox's own default, 40 s, outlasts
#: any client timeout: each one drawn would idle a test until the client gave up).
TEST_DEFAULTS: dict[str, Any] = {"port": 0, "latency": 0.0, "qps": 0.0, "slow_seconds": 0.2}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "patsnap_sandbox(**config): SandboxConfig fields for this test's `patsnap_sandbox` as keywords "
        "(for example latency=1.0, fault_rate=0.1), and frozen_clock=True for a clock that only "
        "advance() moves; any other argument fails the test",
    )


#: What a marker or the factory takes besides the SandboxConfig fields.
PLUGIN_SETTINGS = ("frozen_clock",)


def sandbox_settings(args: Sequence[Any], kwargs: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``kwargs`` when every one is a :class:`SandboxConfig` field or ``frozen_clock`` and there are no
    positional ``args``; otherwise the test fails, naming what ``where`` did not understand: an ignored
    argument would run the test without the faults it asked for."""
    known = [field.name for field in dataclasses.fields(SandboxConfig)] + list(PLUGIN_SETTINGS)
    problems = []
    if args:
        problems.append(
            f"positional argument(s) {tuple(args)!r} are not understood: give settings as keywords "
            "(fault_rate=0.2, seed=1), or unpack a dict (**{...})"
        )
    unknown = [name for name in kwargs if name not in known]
    if unknown:
        problems.append(f"unknown keyword(s): {', '.join(unknown)} (it takes {', '.join(known)})")
    if problems:
        pytest.fail(f"{where}: {'; '.join(problems)}", pytrace=False)
    return dict(kwargs)


def _reset_shared_client_state() -> None:
    """Tokens and rate limiters are shared per base URL for the whole process: a later sandbox can reuse
    a loopback port, and must not be handed an earlier sandbox's token."""
    import sys

    shared = sys.modules.get("airflow_provider_patsnap.hooks._shared")
    if shared is not None:  # nothing to reset when no hook was ever imported
        shared.reset_shared_state()


@pytest.fixture
def patsnap_sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with any :class:`SandboxConfig` fields; each is stopped after the test.

    ``frozen_clock=True``: the sandbox's clock stands still until ``advance()`` moves it (the rate limit
    refills, tokens and links expire and report jobs progress only when the test says so).
    """
    started: list[Sandbox] = []

    def start(*, frozen_clock: bool = False, **config: Any) -> Sandbox:
        sandbox_settings((), config, "patsnap_sandbox_factory")
        clock = SandboxClock.frozen() if frozen_clock else None
        sandbox = Sandbox(SandboxConfig(**{**TEST_DEFAULTS, **config}), clock=clock).start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def patsnap_sandbox(
    patsnap_sandbox_factory: Callable[..., Sandbox], request: pytest.FixtureRequest
) -> Sandbox:
    """A running sandbox; a ``@pytest.mark.patsnap_sandbox(...)`` marker sets its configuration (keywords
    only: anything else fails the test, naming it)."""
    marker = request.node.get_closest_marker("patsnap_sandbox")
    if marker is None:
        return patsnap_sandbox_factory()
    return patsnap_sandbox_factory(
        **sandbox_settings(marker.args, marker.kwargs, "@pytest.mark.patsnap_sandbox")
    )


@pytest.fixture
def patsnap_conn(patsnap_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> str:
    """``patsnap_default`` pointing at ``patsnap_sandbox`` (client id + secret, no client rate limit,
    ``timeout`` :data:`CONN_TIMEOUT`, the connection's default retries); returns the connection id."""
    _reset_shared_client_state()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        patsnap_sandbox.connection_json(qps=0, timeout=CONN_TIMEOUT),
    )
    return CONN_ID
