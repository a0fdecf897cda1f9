"""SIGTERM stops a data task within seconds, with no further call to PatSnap and what it wrote kept, on a
real `airflow dags test` into SQLite."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from tests.helpers import AIRFLOW_BIN, RawRequest, RawServer, airflow_env, envelope, http_response

DATA_PATH = "/advanced-patent-data/award-data"
IN_FLIGHT = 10
ANSWERED = 2  # calls answered with data before the vendor starts saying "retry after 30 s"
#: From SIGTERM to the process gone: the task stops at once; the rest is Airflow ending `dags test`.
EXIT_WITHIN = 10.0


def rows_in(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM awards").fetchone()[0])
    except sqlite3.OperationalError:  # no file or no table yet, or the writer holds its lock
        return 0


def test_sigterm_abandons_backoff_keeps_what_was_written_and_exits_within_seconds(tmp_path: Path) -> None:
    server = RawServer()
    server.script(
        "/oauth/token", http_response(200, json.dumps({"token": "stop-token", "expires_in": 1799}).encode())
    )
    answered: list[str] = []
    all_waiting = threading.Event()
    lock = threading.Lock()

    def vendor(connection: socket.socket, request: RawRequest) -> None:
        requested = request.query["patent_number"].split(",")
        with lock:
            data = len(answered) < ANSWERED * 100
            if data:
                answered.extend(requested)
            elif len(server.requests_to(DATA_PATH)) >= ANSWERED + IN_FLIGHT:
                all_waiting.set()
        if data:
            award = {"patent_award_data": [{"award_name": "Gold"}]}
            body = envelope([{"pn": pn, "patent_id": f"id-{pn}", **award} for pn in requested])
            connection.sendall(http_response(200, body))
            return
        refusal = envelope(status=False, error_code=67200002, error_msg="too fast")
        connection.sendall(http_response(429, refusal, Retry_After="30"))

    server.script(DATA_PATH, vendor)
    connection = {
        "conn_type": "patsnap",
        "host": server.base_url,
        "login": "stop-client",
        "password": "stop-secret",
        "extra": {"qps": 0, "max_retries": 5, "concurrency": IN_FLIGHT},
    }
    database = tmp_path / "warehouse.db"
    env = airflow_env(
        tmp_path / "home",
        Path(__file__).parent / "dags",
        AIRFLOW_CONN_PATSNAP_DEFAULT=json.dumps(connection),
        AIRFLOW_CONN_STOP_WAREHOUSE=json.dumps({"conn_type": "sqlite", "host": str(database)}),
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
        written = 100 * ANSWERED
        give_up = time.monotonic() + 60
        while rows_in(database) < written:  # waiting for an event: the two answered batches committed
            assert time.monotonic() < give_up, "the answered batches were never written"
            time.sleep(0.05)
        calls_at_sigterm = len(server.requests_to(DATA_PATH))
        signalled = time.monotonic()
        run.send_signal(signal.SIGTERM)
        # Every other batch now sleeps on Retry-After: 30. Stopping means not waiting for it.
        output, _ = run.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        run.kill()
        server.close()
    assert took < EXIT_WITHIN, f"exited {took:.1f} s after SIGTERM\n{output[-3000:]}"
    assert len(server.requests_to(DATA_PATH)) == calls_at_sigterm, output[-3000:]
    # Airflow 3 calls on_kill and lets the task end by itself; 2.11 also raises AirflowTaskTerminated.
    assert "was stopped" in output or "Task received SIGTERM signal" in output, output[-3000:]
    with sqlite3.connect(database) as warehouse:
        kept = sorted(pn for (pn,) in warehouse.execute("SELECT pn FROM awards"))
    assert kept == sorted(answered), output[-3000:]
