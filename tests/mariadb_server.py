"""A throwaway MariaDB server (mariadb-install-db + mariadbd in a temp dir), for the tests.

Like :mod:`tests.postgres_cluster`: a scratch server on 127.0.0.1 that lives as long as one test session,
never a server to keep. utf8mb4 by default (server, database and the tables that take the default),
``innodb_flush_log_at_trx_commit=2``, no doublewrite, no binary log, no performance schema. As root the
server runs as ``mysql`` (``mariadbd --user=mysql`` drops to it), as PostgreSQL runs as ``postgres``.

The server says it is ready through the systemd notify protocol (``NOTIFY_SOCKET``, a datagram socket in
the temp dir; Debian's mariadbd is built with it): the start waits for that message, not for time to pass.
Measured on the 2-core machine: ``mariadb-install-db`` about 1.0 s, ``mariadbd`` ready about 0.2 s later.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

from tests.helpers import free_port

INSTALL_HINT = (
    "MariaDB server binaries (mariadbd, mariadb-install-db) not found: install them with "
    "`apt-get install mariadb-server` (.ci/run does this in CI; no service is started)"
)
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
DATABASE = "patsnap"
USER = "patsnap"
PASSWORD = "patsnap-test"  # a scratch server on loopback: no secret
READY_TIMEOUT = 60.0


def mariadb_available() -> bool:
    return os.access(MARIADBD, os.X_OK) and os.access(INSTALL_DB, os.X_OK)


class MariaDBServer:
    """``with MariaDBServer() as db:`` starts a fresh server; ``db.connection`` is Airflow's connection."""

    def __init__(self) -> None:
        if not mariadb_available():
            raise FileNotFoundError(INSTALL_HINT)
        self.port = 0
        self.start_seconds = 0.0  # install + start, measured by start()
        self._base = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._as_mysql = os.geteuid() == 0

    @property
    def config_path(self) -> str:
        return os.path.join(self._base, "my.cnf")

    @property
    def log_path(self) -> str:
        return os.path.join(self._base, "error.log")

    def _write_config(self) -> None:
        settings = {
            "datadir": os.path.join(self._base, "data"),
            "socket": os.path.join(self._base, "mariadbd.sock"),
            "pid-file": os.path.join(self._base, "mariadbd.pid"),
            "log-error": self.log_path,
            "port": str(self.port),
            "bind-address": "127.0.0.1",
            "skip-name-resolve": "",
            "character-set-server": "utf8mb4",
            "collation-server": "utf8mb4_bin",
            "innodb_flush_log_at_trx_commit": "2",
            "innodb_doublewrite": "0",
            "innodb_buffer_pool_size": "128M",
            "innodb_log_file_size": "32M",
            "performance_schema": "OFF",
            "skip-log-bin": "",
            "max_connections": "200",
        }
        lines = ["[mariadbd]"] + [f"{key}={value}" if value else key for key, value in settings.items()]
        with open(self.config_path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    def start(self) -> MariaDBServer:
        started = time.monotonic()
        self._base = tempfile.mkdtemp(prefix="patsnap-mariadb-")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def _start(self) -> None:
        user = ["--user=mysql"] if self._as_mysql else []
        if self._as_mysql:
            shutil.chown(self._base, "mysql", "mysql")
        self.port = free_port()
        self._write_config()
        subprocess.run(
            [
                INSTALL_DB,
                f"--defaults-file={self.config_path}",
                *user,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        notify_path = os.path.join(self._base, "notify.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(notify_path)
            os.chmod(notify_path, 0o777)  # mariadbd writes to it after dropping to `mysql`
            self._process = subprocess.Popen(
                [MARIADBD, f"--defaults-file={self.config_path}", *user],
                env={**os.environ, "NOTIFY_SOCKET": notify_path},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._wait_ready(notify)
        self._create_database()

    def _wait_ready(self, notify: socket.socket) -> None:
        """Until mariadbd sends ``READY=1``; fails at once if it exits first."""
        notify.settimeout(0.5)  # how often to check that the process still runs, not a pause
        deadline = time.monotonic() + READY_TIMEOUT
        assert self._process is not None
        while time.monotonic() < deadline:
            try:
                message = notify.recv(4096).decode("utf-8", "replace")
            except TimeoutError:
                message = ""
            if "READY=1" in message.split("\n"):
                return
            if self._process.poll() is not None:
                break
        raise RuntimeError(f"mariadbd did not become ready: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return handle.read()[-3000:]
        except OSError as error:
            return str(error)

    def _create_database(self) -> None:
        import MySQLdb

        connection = MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", charset="utf8mb4")
        try:
            cursor = connection.cursor()
            cursor.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            for host in ("127.0.0.1", "localhost"):
                cursor.execute(f"CREATE USER '{USER}'@'{host}' IDENTIFIED BY '{PASSWORD}'")
                # Every database: tests make fresh ones (fresh_mariadb_database).
                cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'{host}'")
        finally:
            connection.close()

    def stop(self) -> None:
        """Kill the server (nothing here is kept) and remove the files; safe to call twice."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=30)
            self._process = None
        if self._base:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = ""

    @property
    def connection(self) -> dict[str, Any]:
        """An Airflow ``mysql`` connection to the ``patsnap`` database (mysqlclient, utf8mb4)."""
        return {
            "conn_type": "mysql",
            "host": "127.0.0.1",
            "port": self.port,
            "login": USER,
            "password": PASSWORD,
            "schema": DATABASE,
            "extra": {"charset": "utf8mb4"},
        }

    @property
    def connection_json(self) -> str:
        return json.dumps(self.connection)

    def __enter__(self) -> MariaDBServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def mariadb_admin(server_json: str, database: str = "") -> Any:
    """A mysqlclient connection (utf8mb4, autocommit) to the MariaDB fixture's server as its user."""
    import MySQLdb

    settings = json.loads(server_json)
    connection = MySQLdb.connect(
        host=settings["host"],
        port=settings["port"],
        user=settings["login"],
        passwd=settings["password"],
        db=database,
        charset="utf8mb4",
    )
    connection.autocommit(True)
    return connection


def fresh_mariadb_database(server_json: str) -> str:
    """Create an empty database on the MariaDB fixture's server; return connection JSON for it."""
    import uuid

    name = f"t_{uuid.uuid4().hex[:12]}"
    connection = mariadb_admin(server_json)
    try:
        connection.cursor().execute(f"CREATE DATABASE {name}")
    finally:
        connection.close()
    return json.dumps({**json.loads(server_json), "schema": name})
