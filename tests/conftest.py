"""Test configuration.

The first part (environment) runs when pytest loads this file, before any test module imports
Airflow: Airflow reads AIRFLOW_HOME and its config once, at first import, and otherwise creates
``~/airflow`` and an example-laden config. Fixtures go below the ``# --- fixtures ---`` line.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# --- environment (must run before anything imports airflow) -------------------------------------
if "airflow" in sys.modules:  # pragma: no cover - only if a plugin imported Airflow first
    warnings.warn(
        "airflow was imported before tests/conftest.py could set AIRFLOW_HOME; "
        "the test environment may be using the wrong config",
        stacklevel=1,
    )

if not os.environ.get("AIRFLOW_HOME"):
    _session_home = tempfile.mkdtemp(prefix="patsnap-airflow-home-")
    atexit.register(shutil.rmtree, _session_home, ignore_errors=True)
    os.environ["AIRFLOW_HOME"] = _session_home

AIRFLOW_HOME = Path(os.environ["AIRFLOW_HOME"]).resolve()
AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)

os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault(
    "AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "airflow_provider_patsnap" / "example_dags")
)
# The metadata DB must be a file: in-memory sqlite breaks `dags test` / dag.test().
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}")
# Airflow 2.11 warns on every start unless timer metrics use the Airflow 3 unit; harmless on 3.x.
os.environ.setdefault("AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY", "True")
# Unit-test mode changes Airflow's behaviour (config defaults, DB handling); we test the real thing.
os.environ.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)

# Let tests import benchmarks as a top-level package.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# --- fixtures ---

import pytest  # noqa: E402  (after the environment set-up above, on purpose)

TIERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test's tier is the folder it lives in: `make test-fast` runs `-m unit`."""
    for item in items:
        tier = Path(str(item.path)).relative_to(REPO_ROOT / "tests").parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live in tests/unit, tests/integration or tests/system"
            )
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def _fresh_process_wide_hook_state() -> None:
    """Tokens and rate limiters are shared per (base URL, apikey) for the whole process. A loopback port
    can be reused by a later test's server with the same credentials: start every test without them."""
    from airflow_provider_patsnap.hooks._transport import reset_shared_state

    reset_shared_state()
