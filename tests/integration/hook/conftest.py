"""Fixtures for hook tests: a scripted loopback server for exact error sequences, and the sandbox."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict → JSON; bytes → raw; None → drop the connection
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float


class ScriptedServer:
    """Answers each request with the next scripted reply for its path (the last one repeats)."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer._lock:
                    outer.seen.append(
                        Seen(
                            self.command,
                            parts.path,
                            {k: v[0] for k, v in parse_qs(parts.query).items()},
                            dict(self.headers),
                            body,
                            time.monotonic(),
                        )
                    )
                    script = outer.scripts.get(parts.path) or [Reply(404, {"status": False})]
                    reply = script.pop(0) if len(script) > 1 else script[0]
                if reply.body is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.token_reply(token="tok-1")

    def token_reply(self, **body: Any) -> None:
        self.scripts["/oauth/token"] = [Reply(200, {"token_type": "BearerToken", "expires_in": 1799, **body})]

    def business(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]


def ok(data: Any) -> Reply:
    return Reply(200, {"data": data, "status": True, "error_code": 0})


def error(code: int, status: int = 200, **headers: str) -> Reply:
    return Reply(status, {"status": False, "error_code": code, "error_msg": f"vendor says {code}"}, headers)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PATSNAP_DEFAULT",
        json.dumps(
            {
                "conn_type": "patsnap",
                "host": server.base_url,
                "login": "scripted-client",
                "password": "scripted-secret",
                "extra": {"qps": 0, "max_retries": 3, "timeout": 2},
            }
        ),
    )
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from airflow_provider_patsnap.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(port=0)) as sb:
        monkeypatch.setenv("AIRFLOW_CONN_PATSNAP_DEFAULT", sb.connection_json(auth="secret", qps=0))
        yield sb


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep retries quick: backoff is tested by the wait computation, not by sleeping."""
    monkeypatch.setattr("airflow_provider_patsnap.hooks._transport.MAX_RETRY_WAIT", 0.05)
