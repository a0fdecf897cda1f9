"""The hook through Airflow's own CLI: `airflow connections test` on a sandbox connection, and
`airflow tasks test` of a data task against a vendor that echoes credentials."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import Answer, RawRequest, RawServer, airflow, airflow_env, envelope, http_response

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


def test_airflow_tasks_test_prints_and_logs_no_credential_a_vendor_echoes(tmp_path: Path) -> None:
    """A data task under `airflow tasks test`: the data endpoint echoes the bearer token (a busy answer,
    retried, then "token expired"), and the token endpoint asked again echoes the Basic header and the
    secret. The task fails; nothing it printed or logged holds a credential."""
    client, secret, token = "leak-client", "leak-secret-value-42", "leak-token-value-0123456789"
    basic = base64.b64encode(f"{client}:{secret}".encode()).decode()
    vendor = RawServer()

    def token_rejected(connection: socket.socket, request: RawRequest) -> None:
        said = f"rejected {request.headers.get('Authorization')} ({secret}, {basic})"
        body = envelope(status=False, error_code=67200003, error_msg=said)
        connection.sendall(http_response(401, body, Content_Type="application/json"))

    def echo_bearer(status: int, code: int, words: str) -> Answer:
        def answer(connection: socket.socket, request: RawRequest) -> None:
            said = f"{words}, you sent {request.headers.get('Authorization')}"
            body = envelope(status=False, error_code=code, error_msg=said)
            connection.sendall(http_response(status, body, Content_Type="application/json"))

        return answer

    vendor.script(
        "/oauth/token",
        http_response(200, json.dumps({"token": token, "expires_in": 1799}).encode()),
        token_rejected,
    )
    vendor.script(
        "/advanced-patent-data/award-data",
        echo_bearer(503, 67200100, "busy"),
        echo_bearer(401, 67200003, "token expired"),
    )
    try:
        env = airflow_env(
            tmp_path / "home",
            Path(__file__).parent / "dags",
            AIRFLOW_CONN_PATSNAP_DEFAULT=vendor.connection_json(secret, client, qps=0, max_retries=1),
        )
        result = airflow(["tasks", "test", "patsnap_leak", "awards", "2024-01-01"], env)
        data_calls = vendor.requests_to("/advanced-patent-data/award-data")
        token_calls = vendor.requests_to("/oauth/token")
    finally:
        vendor.close()
    # The echoes really carried the credentials, and the task really ran into them.
    assert [call.headers["Authorization"] for call in data_calls] == [f"Bearer {token}"] * 2
    assert [call.headers["Authorization"] for call in token_calls] == [f"Basic {basic}"] * 2
    # `tasks test` logs to stdout; every file it leaves in AIRFLOW_HOME is read too: log files, and the
    # metadata DB (task instances, XCom).
    files = {
        str(path.relative_to(tmp_path)): path.read_bytes().decode("utf-8", errors="replace")
        for path in (tmp_path / "home").rglob("*")
        if path.is_file()
    }
    assert "home/airflow.db" in files
    texts = {"stdout": result.stdout, "stderr": result.stderr, **files}
    everything = "\n".join(texts.values())
    # (Airflow 3.3's `tasks test` exits 0 when the task fails: the error is what says it did.)
    for words in ("busy, you sent Bearer", "PatsnapAuthError", "rejected Basic"):
        assert words in everything, (words, everything[-3000:])
    for name, text in texts.items():
        for leaked in (token, secret, basic):
            assert leaked not in text, (name, leaked, text[-3000:])
