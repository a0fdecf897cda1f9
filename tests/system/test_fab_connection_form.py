"""A PatSnap connection made in Airflow 2.11's UI works: its own Add/Edit pages and its Test button.

Airflow 2.11's connection pages are a Flask AppBuilder view; Flask's test client drives the real view
(no server) in a subprocess with a fresh metadata DB, submitting what a browser would (tests/fab_form.py).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_patsnap.connection import parse_connection
from airflow_provider_patsnap.sandbox import Sandbox
from tests.helpers import EXAMPLE_DAGS, REPO_ROOT, airflow_env

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("airflow.www") is None,
    reason="the Flask AppBuilder connection pages are Airflow 2.11's (make pytest AIRFLOW=2)",
)


def test_a_connection_saved_with_the_form_defaults_works_and_the_test_button_passes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from airflow.models import Connection

    client_id, secret = sandbox.config.client_id, sandbox.config.client_secret
    env = airflow_env(
        tmp_path / "airflow-home",
        EXAMPLE_DAGS,
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        FORM_CONN_LOGIN=client_id,
        FORM_CONN_SECRET=secret,
    )
    run = subprocess.run(
        [sys.executable, "-m", "tests.system.fab_connection_view", sandbox.base_url],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert seen["add_page"] == {
        "status": 200,
        "config_test_connection": "Enabled",
        "test_url": "/api/v1/connections/test",
        "patsnap_testable": True,  # the Test button is enabled for type PatSnap
    }
    assert seen["defaults_posted"] == {
        "extra__patsnap__qps": "5",
        "extra__patsnap__timeout": "30",
        "extra__patsnap__max_retries": "5",
        "extra__patsnap__verify": "y",
        "extra__patsnap__proxies": "",
        "extra__patsnap__rate_limit_redis_conn_id": "",
    }
    assert seen["saved"] == {"status": 200, "added": True}
    after_add, after_edit = seen["stored_after_add"], seen["stored_after_edit"]
    assert json.loads(after_add["extra"]) == {"qps": "5", "timeout": "30", "max_retries": 5, "verify": True}
    assert seen["edited_status"] == 200
    assert after_edit == after_add  # an unchanged Edit keeps the secret and the extras
    for state in (after_add, after_edit):
        assert "***" not in state["extra"] and state["password_kept"]
        settings = parse_connection(
            Connection(
                conn_id="patsnap_fab",
                conn_type="patsnap",
                host=state["host"],
                login=state["login"],
                password=secret,
                extra=state["extra"],
            )
        )
        assert (settings.base_url, settings.qps, settings.timeout, settings.max_retries) == (
            sandbox.base_url,
            5.0,
            30.0,
            5,
        )
        assert settings.verify is True and settings.proxies is None

    assert seen["hook_test"] == [True, f"Token issued by {sandbox.base_url}"]
    assert seen["test_button"] == {
        "status": 200,
        "body": {"status": True, "message": f"Token issued by {sandbox.base_url}"},
    }
    assert secret not in run.stdout
