"""Helpers shared by every tier: generators, expected rows, task-instance stand-ins, `airflow` runs.

Imported by test modules (never by a conftest), so a fixture file never hides what a test depends on.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_patsnap.endpoints import Endpoint, IdKind
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sandbox.data import patent_object
from scripts.airflow_env import airflow_env as repository_airflow_env

REPO_ROOT = Path(__file__).resolve().parent.parent
# At the repository's top; the wheel ships them as airflow_provider_patsnap/example_dags (a symlink to
# this folder in the checkout), which the provider never imports: only Airflow's DAG processor reads them.
EXAMPLE_DAGS = REPO_ROOT / "example_dags"
CONN_ENV = "AIRFLOW_CONN_PATSNAP_DEFAULT"
CREATE_PATH = "/patent-valuation-data/patent-report/task/create-no-logo"
STATUS_PATH = "/patent-valuation-data/patent-report/job_id/status"
AIRFLOW_BIN = str(Path(sys.executable).parent / "airflow")
# The unit tier's mocked PatSnap (requests-mock answers here; nothing listens).
BASE_URL = "https://patsnap.test"
TOKEN_URL = f"{BASE_URL}/oauth/token"


def numbers(count: int, prefix: str = "CN", start: int = 100000000) -> list[str]:
    """``count`` distinct, valid patent numbers (the sandbox has data for most of them)."""
    return [f"{prefix}{start + i}A" for i in range(count)]


def business(sandbox: Sandbox, path: str) -> list[Any]:
    """The sandbox's records of requests to ``path``."""
    return [record for record in sandbox.requests if record.path == path]


def creates(sandbox: Sandbox) -> int:
    """How many report jobs were asked for (each one is paid)."""
    return len(business(sandbox, CREATE_PATH))


def expected_rows(
    endpoint: Endpoint, ids: list[str], kind: IdKind = "patent_number", lang: str = "en"
) -> list[dict[str, Any]]:
    """The rows the operator must land for ``ids``, from the sandbox's own data (``fetched_at`` dropped)."""
    rows = []
    for value in ids:
        patent = patent_object(endpoint.code, kind, value, lang)  # type: ignore[arg-type]
        if patent is not None:
            rows.extend(without_fetched_at(row) for row in records(endpoint, patent, ""))
    return rows


def records(endpoint: Endpoint, patent: Mapping[str, Any], fetched_at: str) -> list[dict[str, Any]]:
    """The rows of one per-patent object as dicts; ``ValueError`` naming the first reject if any."""
    mapped = endpoint.map_patent(patent, fetched_at)
    if mapped.rejects:
        raise ValueError(mapped.rejects[0].reason)
    return [dict(zip(endpoint.column_names, row, strict=True)) for row in mapped.rows]


def with_values(endpoint: Endpoint, row: tuple[Any, ...], **values: Any) -> tuple[Any, ...]:
    """``row`` with the named columns set to ``values``."""
    changed = list(row)
    for name, value in values.items():
        changed[endpoint.column_names.index(name)] = value
    return tuple(changed)


def record_key(patent_id: str | None, key_values: Sequence[Any]) -> str:
    """The documented record key: sha1 of the patent id and the key columns' text, joined by \\x1f."""
    texts = ["" if patent_id is None else str(patent_id)]
    texts += ["" if value is None else str(value) for value in key_values]
    return hashlib.sha1("\x1f".join(texts).encode("utf-8")).hexdigest()


def without_fetched_at(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "fetched_at"}


def sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((without_fetched_at(row) for row in rows), key=lambda row: row["record_key"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeTaskInstance:
    """Just enough of a task instance for XCom: a dict per key, kept while the object lives."""

    task_id = "create_report"
    map_index = -1
    stats_tags: dict[str, str] = {}

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int = -1) -> Any:
        assert task_ids == self.task_id
        return self.xcom.get(key)


class OutletEvents:
    """Airflow's ``context["outlet_events"]``, recording what a task attaches to which alias."""

    def __init__(self) -> None:
        self.added: list[tuple[Any, Any, dict[str, Any]]] = []

    def __getitem__(self, alias: Any) -> Any:
        events = self

        class Accessor:
            def add(self, asset: Any, extra: dict[str, Any] | None = None) -> None:
                events.added.append((alias, asset, dict(extra or {})))

        return Accessor()


class FakeTaskStateStore:
    """Airflow 3.3's task_state_store: survives retries (unlike XCom, cleared at each new try)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        assert value is not None
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def finish_report_jobs(sandbox: Sandbox) -> None:
    """Move the sandbox's clock past ``report_delay``: every job created so far is done (or failed)."""
    sandbox.advance(sandbox.config.report_delay)


def finish_report_jobs_once_polled(sandbox: Sandbox, polls: int = 1) -> threading.Thread:
    """Finish the report jobs once the sandbox has answered ``polls`` status requests, so the code under
    test sees "not ready" first and "done" on a later poll, however fast or slow the machine is."""

    def finish_after_polls() -> None:
        while len(business(sandbox, STATUS_PATH)) < polls:
            time.sleep(0.01)  # waiting for an event (a request), not for time to pass
        finish_report_jobs(sandbox)

    thread = threading.Thread(target=finish_after_polls, daemon=True)
    thread.start()
    return thread


def airflow(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the venv's ``airflow`` CLI with ``env``; never reads stdin."""
    return subprocess.run(
        [AIRFLOW_BIN, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def airflow_env(home: Path, dags: Path, **extra: str) -> dict[str, str]:
    """A fresh, migrated metadata DB in ``home`` with DAGs from ``dags``; ``extra`` is added to the env."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **repository_airflow_env(home, dags_folder=dags),
        "PYTHONPATH": str(REPO_ROOT),
        **extra,
    }
    migrated = airflow(["db", "migrate"], env)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return env


class FakeClock:
    """A clock for the hook's waits (see ``reset_shared_state``): waiting moves time, nothing sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def wait(self, event: threading.Event, seconds: float) -> bool:
        with self._lock:
            self.waits.append(seconds)
            self.now += seconds
        return event.is_set()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class KilledWhileWaiting(FakeClock):
    """The hook's clock (see ``reset_shared_state``) whose waits start by calling ``kill`` (a test sets
    it to the operator's ``on_kill``): SIGTERM arriving while the task waits."""

    def __init__(self) -> None:
        super().__init__()
        self.kill: Callable[[], None] = lambda: None

    def wait(self, event: threading.Event, seconds: float) -> bool:
        self.kill()
        return super().wait(event, seconds)


class RawRequest(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


Answer = Callable[[socket.socket, RawRequest], None]


class RawServer:
    """A loopback HTTP peer we control byte by byte: each request on a path gets the next scripted
    answer (the last one repeats); an answer is raw bytes, or a function that writes to the socket
    (to trickle, cut a body short or hang up). One request per connection."""

    def __init__(self, default: bytes | Answer | None = None) -> None:
        self.default = default if default is not None else http_response(404, b"{}")
        self.answers: dict[str, list[bytes | Answer]] = {}
        self.seen: list[RawRequest] = []
        self.connections = 0  # accepted, whether or not a request followed
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def script(self, path: str, *answers: bytes | Answer) -> None:
        self.answers[path] = list(answers)

    def connection_json(self, password: str, login: str | None = None, **extra: Any) -> str:
        """``AIRFLOW_CONN_*`` JSON for a PatSnap connection to this server; ``extra`` is its extra."""
        connection = {"conn_type": "patsnap", "host": self.base_url, "password": password, "extra": extra}
        return json.dumps({**connection, "login": login} if login else connection)

    def requests_to(self, path: str) -> list[RawRequest]:
        with self._lock:
            return [request for request in self.seen if request.path == path]

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            request = _read_request(connection)
            if request is None:
                return
            with self._lock:
                self.seen.append(request)
                script = self.answers.get(request.path) or [self.default]
                answer = script.pop(0) if len(script) > 1 else script[0]
            try:
                if callable(answer):
                    answer(connection, request)
                else:
                    connection.sendall(answer)
            except OSError:
                pass  # the client hung up: that is what some tests are about

    def close(self) -> None:
        self.stopped.set()
        self._listener.close()


def _read_request(connection: socket.socket) -> RawRequest | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
    length = int(headers.get("Content-Length", "0"))
    while len(body) < length:
        body += connection.recv(65536)
    parts = urlsplit(target)
    return RawRequest(method, parts.path, dict(parse_qsl(parts.query)), headers, body)


def http_response(status: int, body: bytes, **headers: str) -> bytes:
    """A complete HTTP/1.1 answer with a correct Content-Length (unless given) and Connection: close."""
    lines = [
        f"HTTP/1.1 {status} X",
        "Connection: close",
        *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
    ]
    if "Content-Length" not in {key.replace("_", "-") for key in headers}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def envelope(data: Any = None, *, status: bool = True, error_code: int = 0, error_msg: str = "") -> bytes:
    return json.dumps(
        {"data": data, "status": status, "error_code": error_code, "error_msg": error_msg}
    ).encode()


class CannedVendor:
    """A loopback PatSnap (a :class:`RawServer`) that answers every data call with the exact ``data``
    JSON text it is given. Its connection uses an ``sk-`` key (no token step), ``qps`` 0 and
    ``max_retries`` 0; ``calls`` counts the data calls made (each one is paid)."""

    def __init__(self, data_json: str) -> None:
        body = ('{"data": ' + data_json + ', "status": true, "error_code": 0, "error_msg": ""}').encode()
        self.server = RawServer(default=http_response(200, body, Content_Type="application/json"))

    @property
    def calls(self) -> int:
        return len(self.server.seen)

    def connection_json(self) -> str:
        return self.server.connection_json(password="sk-canned", qps=0, max_retries=0)

    def close(self) -> None:
        self.server.close()


def postgres_admin(server_json: str) -> Any:
    """An autocommit psycopg connection to the ``postgres`` database of the PostgreSQL fixture's server."""
    import psycopg

    settings = json.loads(server_json)
    return psycopg.connect(
        host=settings["host"],
        port=settings["port"],
        user=settings["login"],
        dbname="postgres",
        autocommit=True,
    )


def fresh_postgres_database(server_json: str) -> str:
    """Create an empty database on the PostgreSQL fixture's server; return connection JSON for it."""
    import uuid

    name = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_admin(server_json) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return json.dumps({**json.loads(server_json), "schema": name})


class ScriptedVendor:
    """A loopback PatSnap (a :class:`RawServer`) whose per-patent objects a test sets (and changes between
    runs).

    A data call is answered with the objects of the requested ``patent_number`` values that are in
    ``objects`` (others have no data), as PatSnap does; ``billed`` counts the objects returned. Its
    connection uses an ``sk-`` key (no token step), ``qps`` 0 and ``max_retries`` 0.
    """

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.billed = 0
        self._lock = threading.Lock()
        self.server = RawServer(default=self._answer)

    def _answer(self, connection: socket.socket, request: RawRequest) -> None:
        wanted = request.query.get("patent_number", "").split(",")
        data = [self.objects[pn] for pn in wanted if pn in self.objects]
        with self._lock:
            self.calls += 1
            self.billed += len(data)
        connection.sendall(http_response(200, envelope(data), Content_Type="application/json"))

    def connection_json(self) -> str:
        return self.server.connection_json(password="sk-scripted", qps=0, max_retries=0)

    def close(self) -> None:
        self.server.close()


class OperatorClock:
    """Stands in for the data operators' ``utc_now``: row times, history validity and freshness."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
