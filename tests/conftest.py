"""Test configuration.

The first part (environment) runs when pytest loads this file, before any test module imports
Airflow: Airflow reads AIRFLOW_HOME and its config once, at first import, and otherwise creates
``~/airflow`` and an example-laden config. Fixtures go below the ``# --- fixtures ---`` line.
"""

from __future__ import annotations

import atexit
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

# --- environment (must run before anything imports airflow) -------------------------------------
if "airflow" in sys.modules:  # pragma: no cover - only if a plugin imported Airflow first
    warnings.warn(
        "airflow was imported before tests/conftest.py could set AIRFLOW_HOME; "
        "the test environment may be using the wrong config",
        stacklevel=1,
    )

# Tests import example_dags, benchmarks and scripts from the repository root.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scripts.airflow_env import airflow_env  # noqa: E402  (stdlib only; REPO_ROOT is on sys.path now)

# A given AIRFLOW_HOME (make pytest sets one) is kept; otherwise a private one for this session.
if not os.environ.get("AIRFLOW_HOME"):
    _session_home = tempfile.mkdtemp(prefix="patsnap-airflow-home-")
    atexit.register(shutil.rmtree, _session_home, ignore_errors=True)
    os.environ["AIRFLOW_HOME"] = _session_home
os.environ.update(airflow_env(os.environ["AIRFLOW_HOME"]))
AIRFLOW_HOME = Path(os.environ["AIRFLOW_HOME"])
AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)

# --- fixtures ---

import pytest  # noqa: E402  (after the environment set-up above, on purpose)

TIERS = ("unit", "integration", "system", "repo")
_STARTED = time.monotonic()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Wall time against CPU time (this process and every `airflow` / server child it waited for): a run
    that waits far more than it computes is sleeping somewhere it should not."""
    wall = time.monotonic() - _STARTED
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    terminalreporter.write_line(
        f"pytest: wall {wall:.0f} s, CPU {cpu:.0f} s (wall/CPU {wall / max(cpu, 0.001):.2f}; "
        f"children {children.ru_utime + children.ru_stime:.0f} s)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's tier is the folder it lives in: `make test-fast` runs `-m unit`."""
    for item in items:
        tier = Path(str(item.path)).relative_to(REPO_ROOT / "tests").parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live in tests/unit, tests/integration, tests/system or tests/repo"
            )
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def _fresh_process_wide_hook_state() -> None:
    """Tokens and rate limiters are shared per (base URL, apikey) for the whole process. A loopback port
    can be reused by a later test's server with the same credentials: start every test without them."""
    from airflow_provider_patsnap.hooks._shared import reset_shared_state

    reset_shared_state()
