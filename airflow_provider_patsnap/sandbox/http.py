"""The sandbox's two HTTP servers: the API (with its /_sandbox/ admin paths) and the download host.

The handlers only move bytes: :class:`SandboxApp` decides every answer. The admin paths are how a
sandbox in another process (the CLI, a benchmark, the soak) is driven; they map one-to-one onto the
:class:`Sandbox` methods.
"""

from __future__ import annotations

import math
import socket
import socketserver
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_patsnap.sandbox.app import ApiRequest, Outcome, SandboxApp, json_reply
from airflow_provider_patsnap.sandbox.contract import ADMIN_PREFIX
from airflow_provider_patsnap.sandbox.reports import HttpReply
from airflow_provider_patsnap.sandbox.state import RequestRecord

MAX_BODY_BYTES = 1 << 20
IDLE_TIMEOUT_SECONDS = 60.0  # like a reverse proxy's keep-alive timeout; ends idle handler threads

# ----------------------------------------------------------------------------------------- admin

AdminAction = Callable[[SandboxApp, Mapping[str, str]], Any]


def _requests_since(app: SandboxApp, params: Mapping[str, str]) -> list[dict[str, Any]]:
    since = int(params.get("since") or 0)
    return [asdict(record) for record in app.ledger.since(since)]


def _set_fault_rate(app: SandboxApp, params: Mapping[str, str]) -> dict[str, float]:
    rate = float(params.get("rate", ""))
    if math.isnan(rate):
        raise ValueError("rate must be a number between 0 and 1")
    app.faults.set_rate(rate)
    return {"fault_rate": rate}


def _advance(app: SandboxApp, params: Mapping[str, str]) -> dict[str, float]:
    seconds = float(params.get("seconds", ""))
    app.clock.advance(seconds)
    return {"advanced": seconds}


def _lose_create_answers(app: SandboxApp, params: Mapping[str, str]) -> dict[str, int]:
    count = int(params.get("count", ""))
    app.lost_creates.arm(count)
    return {"create_answers_to_lose": count}


def _fail_token_requests(app: SandboxApp, params: Mapping[str, str]) -> dict[str, int]:
    count = int(params.get("count", ""))
    app.token_outages.arm(count)
    return {"token_requests_to_fail": count}


ADMIN_ROUTES: dict[str, tuple[str, AdminAction]] = {
    "/_sandbox/stats": ("GET", lambda app, _: app.stats()),
    "/_sandbox/requests": ("GET", _requests_since),
    "/_sandbox/expire-tokens": ("POST", lambda app, _: {"expired": app.tokens.expire_all()}),
    "/_sandbox/fault-rate": ("POST", _set_fault_rate),
    "/_sandbox/clear-requests": ("POST", lambda app, _: {"cleared": app.ledger.clear()}),
    "/_sandbox/advance": ("POST", _advance),
    "/_sandbox/lose-create-answers": ("POST", _lose_create_answers),
    "/_sandbox/fail-token-requests": ("POST", _fail_token_requests),
}


def admin_reply(app: SandboxApp, method: str, path: str, params: Mapping[str, str]) -> HttpReply:
    route = ADMIN_ROUTES.get(path)
    if route is None:
        return json_reply(404, {"error": f"unknown admin path {path}", "paths": sorted(ADMIN_ROUTES)})
    allowed, action = route
    if method != allowed:
        return json_reply(405, {"error": f"use {allowed} for {path}"}, (("Allow", allowed),))
    try:
        return json_reply(200, action(app, params))
    except ValueError as error:
        return json_reply(400, {"error": str(error)})


# ----------------------------------------------------------------------------------------- servers


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threading server that can also cut its open keep-alive connections on stop."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (the soak's SIGKILL) is normal here, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    # A client at QPS 100 and 5 s a call opens about 500 connections in its first seconds, while the
    # accept loop shares the interpreter with the handler threads: a short backlog would drop SYNs,
    # and the kernel's 1 s retransmit would deliver those calls late and bunched.
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], app: SandboxApp) -> None:
        self.app = app
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can stall on a reverse-DNS lookup.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        cpu = self.app.cpu
        started = cpu.start()
        try:
            return super().get_request()
        finally:
            cpu.stop(started)

    def process_request(self, request: Any, client_address: Any) -> None:
        cpu = self.app.cpu
        started = cpu.start()  # starting the connection's thread is the sandbox's work too
        try:
            with self._connections_lock:
                self._connections.add(request)
            super().process_request(request, client_address)
        finally:
            cpu.stop(started)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every reply carries an exact Content-Length
    server_version = "PatSnapSandbox/1.0"
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for the
    # client's delayed ACK of the headers (about 40 ms on Linux), a latency the vendor does not have.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer
    arrival = 0.0  # the sandbox clock when the current request line was read (parse_request)
    arrival_wall = 0.0

    def log_message(self, format: str, *args: Any) -> None:
        pass  # per-request lines on stderr would drown test and benchmark output

    def handle_one_request(self) -> None:
        # The thread's CPU clock does not move while it waits for the request line or sleeps the
        # latency, so this charges the sandbox for its work only.
        cpu = self.server.app.cpu
        started = cpu.start()
        try:
            super().handle_one_request()
        finally:
            cpu.stop(started)

    def parse_request(self) -> bool:
        # Called as soon as the request line has been read: the call's arrival, for the rate limit
        # and the ledger, before the headers are parsed or anything else waits.
        app = self.server.app
        self.arrival, self.arrival_wall = app.clock.now(), app.clock.wall()
        return super().parse_request()

    def version_string(self) -> str:
        return self.server_version  # without the Python version the default appends

    def do_GET(self) -> None:
        self.serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def serve(self) -> None:
        raise NotImplementedError

    def send_reply(self, reply: HttpReply) -> bool:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
            return True
        except OSError:  # the client went away (e.g. its read timeout fired during a "slow" fault)
            self.close_connection = True
            return False

    def read_body(self) -> bytes:
        """The request body; raises ValueError when it cannot be framed (the connection then closes)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        length = int(length_text)
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ValueError(f"Content-Length {length} out of range")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise ValueError("chunked body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def drop_connection(self) -> None:
        """Close the socket without a byte of response, like a crashed upstream."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()


class ApiHandler(_BaseHandler):
    """The PatSnap API: token, four data endpoints, two report endpoints and /_sandbox/ admin."""

    def serve(self) -> None:
        app = self.server.app
        arrival, wall = self.arrival, self.arrival_wall
        split = urlsplit(self.path)
        params: dict[str, str] = {}
        for name, value in parse_qsl(split.query, keep_blank_values=True):
            params.setdefault(name, value)  # the first occurrence of a repeated parameter wins
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            body = None
        if split.path.startswith(ADMIN_PREFIX):
            self.send_reply(admin_reply(app, self.command, split.path, params))
            return
        seq = app.ledger.arrive()
        headers = {name.lower(): value for name, value in self.headers.items()}
        if body is None:
            outcome = app.error(68300007, "Bad request! the body could not be read")
        else:
            request = ApiRequest(self.command, split.path, params, headers, body, arrival)
            outcome = self._handle(app, request)
        # Record before answering, so a client that has its answer also finds it in requests/stats.
        record = self._record(arrival, wall, split.path, params, headers, outcome)
        app.ledger.add(seq, record, outcome.category, outcome.billed)
        if outcome.reply is None:
            self.drop_connection()
        else:
            self.send_reply(outcome.reply)

    def _record(
        self,
        arrival: float,
        wall: float,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        outcome: Outcome,
    ) -> RequestRecord:
        return RequestRecord(
            arrival=arrival,
            wall=wall,
            method=self.command,
            path=path,
            params={name: "***" if name == "apikey" else value for name, value in params.items()},
            ids=outcome.ids,
            http_status=0 if outcome.reply is None else outcome.reply.status,
            error_code=outcome.error_code,
            fault=outcome.fault,
            authorization_present="authorization" in headers,
        )

    @staticmethod
    def _handle(app: SandboxApp, request: ApiRequest) -> Outcome:
        try:
            return app.handle(request)
        except Exception:  # a sandbox bug: say so on stderr and answer like the vendor's service error
            traceback.print_exc(file=sys.stderr)
            return app.error(68300008)


class DownloadHandler(_BaseHandler):
    """The 'other host' that serves report files from presigned links."""

    def serve(self) -> None:
        try:
            self.read_body()
        except ValueError:
            self.close_connection = True
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.send_reply(self.server.app.download(self.command, self.path, headers))


@dataclass
class RunningServers:
    """The two bound servers and the threads serving them."""

    api: SandboxHTTPServer
    downloads: SandboxHTTPServer
    threads: list[threading.Thread] = field(default_factory=list)

    def stop(self) -> None:
        for server in (self.api, self.downloads):
            server.shutdown()
            server.close_connections()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)


def start_servers(app: SandboxApp) -> RunningServers:
    config = app.config
    downloads = SandboxHTTPServer(config.host, config.download_port, DownloadHandler, app)
    try:
        api = SandboxHTTPServer(config.host, config.port, ApiHandler, app)
    except BaseException:
        downloads.server_close()
        raise
    app.download_port = downloads.port
    running = RunningServers(api, downloads)
    for name, server in (("api", api), ("downloads", downloads)):
        # A short poll interval keeps stop() fast; shutdown() waits for the loop to notice.
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"patsnap-sandbox-{name}",
            daemon=True,
        )
        thread.start()
        running.threads.append(thread)
    return running
