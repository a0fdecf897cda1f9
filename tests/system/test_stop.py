"""SIGTERM stops a data task within seconds, with no further call to PatSnap, on a real `airflow dags test`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
from pathlib import Path

from tests.helpers import AIRFLOW_BIN, RawRequest, RawServer, airflow_env, envelope, http_response

DATA_PATH = "/advanced-patent-data/award-data"
IN_FLIGHT = 10


def test_sigterm_abandons_backoff_and_makes_no_further_call(tmp_path: Path) -> None:
    server = RawServer()
    server.script("/oauth/token", http_response(200, json.dumps({"token": "t", "expires_in": 1799}).encode()))
    all_waiting = threading.Event()

    def too_fast(connection: socket.socket, request: RawRequest) -> None:
        if len(server.requests_to(DATA_PATH)) >= IN_FLIGHT:
            all_waiting.set()
        connection.sendall(
            http_response(
                429, envelope(status=False, error_code=67200002, error_msg="too fast"), Retry_After="30"
            )
        )

    server.script(DATA_PATH, too_fast)
    connection = {
        "conn_type": "patsnap",
        "host": server.base_url,
        "login": "c",
        "password": "s",
        "extra": {"qps": 0, "max_retries": 5, "concurrency": IN_FLIGHT},
    }
    env = airflow_env(
        tmp_path / "home", Path(__file__).parent / "dags", AIRFLOW_CONN_PATSNAP_DEFAULT=json.dumps(connection)
    )
    run = subprocess.Popen(
        [AIRFLOW_BIN, "dags", "test", "patsnap_stop"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert all_waiting.wait(120), "the task never started its calls"
        run.send_signal(signal.SIGTERM)
        calls_at_sigterm = len(server.requests_to(DATA_PATH))
        # Every batch now sleeps on Retry-After: 30. Stopping means not waiting for it.
        output, _ = run.communicate(timeout=25)
    finally:
        run.kill()
        server.close()
    assert len(server.requests_to(DATA_PATH)) == calls_at_sigterm, output[-3000:]
    # Airflow 3 calls on_kill and lets the task end by itself; 2.11 also raises AirflowTaskTerminated.
    assert "was stopped" in output or "Task received SIGTERM signal" in output, output[-3000:]
