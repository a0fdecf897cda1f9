"""The hook through Airflow's own CLI: `airflow connections test` on a sandbox connection."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import RawRequest, RawServer, envelope, http_response

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


def test_airflow_connections_test_prints_no_credential_a_token_endpoint_echoes() -> None:
    """A token endpoint that echoes what it was sent: the secret, and the Basic header (the base64 of
    client_id:client_secret), which Airflow's masker does not know."""
    secret = "cli-secret-value-42"
    basic = base64.b64encode(f"cli-client:{secret}".encode()).decode()

    def echo(connection: socket.socket, request: RawRequest) -> None:
        said = f"rejected {request.headers.get('Authorization')} ({secret}, {basic})"
        body = envelope(status=False, error_code=67200003, error_msg=said)
        connection.sendall(http_response(401, body, Content_Type="application/json"))

    vendor = RawServer()
    vendor.script("/oauth/token", echo)
    try:
        result = run_airflow(
            "connections", "test", "patsnap_default", conn_json=vendor.connection_json(secret, "cli-client")
        )
        [sent] = vendor.requests_to("/oauth/token")
    finally:
        vendor.close()
    assert sent.headers["Authorization"] == f"Basic {basic}"  # the echo really carried both
    output = result.stdout + result.stderr
    assert "Connection success!" not in output
    assert "67200003" in output and "rejected" in output, output[-3000:]
    for leaked in (secret, basic):
        assert leaked not in output, output[-3000:]
