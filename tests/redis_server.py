"""A throwaway redis-server on a loopback port (nothing saved to disk), for the shared rate limit's tests.

Like tests/postgres_cluster.py: a scratch server that lives as long as one test session (or one test that
stops and restarts it), never a server to keep. Readiness is read from the server's own output (no
polling, no sleep); it is stopped by its PID.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import threading
from typing import Any

from tests.helpers import free_port

INSTALL_HINT = (
    "redis-server not found: install it with `apt-get install redis-server` (.ci/run does this in CI)"
)
READY = "Ready to accept connections"
START_TIMEOUT = 30.0


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    """``with RedisServer() as redis:`` starts a fresh server; ``redis.connection`` is Airflow's connection.

    :meth:`stop` then :meth:`start` again brings it back on the same port, empty (a restarted Redis).
    """

    def __init__(self, port: int | None = None) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.binary = binary
        self.port = port or free_port()
        self.process: subprocess.Popen[str] | None = None
        self._dir = ""
        self.output: list[str] = []

    def start(self) -> RedisServer:
        self._dir = self._dir or tempfile.mkdtemp(prefix="patsnap-redis-")
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        command += ["--dir", self._dir, "--daemonize", "no", "--protected-mode", "no"]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(self.process, ready), daemon=True).start()
        if not ready.wait(START_TIMEOUT) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(
                f"redis-server did not start on port {self.port}: {''.join(self.output)[-2000:]}"
            )
        return self

    def _read_output(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if READY in line:
                ready.set()
        ready.set()  # it ended: start() sees the exit

    def stop(self) -> None:
        """SIGTERM to its PID (SIGKILL if it lingers); the port is free once this returns."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = ""

    @property
    def connection(self) -> dict[str, Any]:
        """An Airflow ``redis`` connection to it (database 0, no password)."""
        return {"conn_type": "redis", "host": "127.0.0.1", "port": self.port, "extra": {"db": 0}}

    @property
    def connection_json(self) -> str:
        return json.dumps(self.connection)

    def client(self) -> Any:
        """A plain redis-py client (tests read and flush the server with it)."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
