"""The hook through Airflow's own CLI: `airflow connections test` on a sandbox connection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def run_airflow(*args: str, conn_json: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRFLOW_CONN_PATSNAP_DEFAULT": conn_json,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    }
    return subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=120)


def test_airflow_connections_test_succeeds_on_a_sandbox_connection(sandbox: Any) -> None:
    result = run_airflow("connections", "test", "patsnap_default", conn_json=sandbox.connection_json())
    assert result.returncode == 0, result.stderr
    assert "Connection success!" in result.stdout
    # Only that: the hook's message ("Token issued by ...") is not printed (docs/connection.md).
    assert "Token issued" not in result.stdout + result.stderr
    assert sandbox.stats()["token_calls"] == 1


def test_airflow_connections_test_fails_on_a_wrong_secret_without_printing_it(sandbox: Any) -> None:
    wrong = sandbox.connection_json().replace(sandbox.config.client_secret, "wrong-secret-123")
    result = run_airflow("connections", "test", "patsnap_default", conn_json=wrong)
    output = result.stdout + result.stderr
    assert "Connection success!" not in output
    assert "67200003" in output
    assert "wrong-secret-123" not in output
