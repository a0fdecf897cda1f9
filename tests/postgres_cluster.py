"""A throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir), for the tests and the soak.

Trust auth on 127.0.0.1 and fsync off: a scratch database that lives as long
as one test session or one soak, never a server to keep. As root, the server runs as ``postgres``
(``runuser``), since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

from tests.helpers import free_port

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin: "
    "install them with `apt-get install postgresql` (.ci/run does this in CI)"
)


def postgres_bin_dir() -> str | None:
    """The newest installed PostgreSQL's ``bin`` directory, or None when there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


class PostgresCluster:
    """``with PostgresCluster() as pg:`` starts a fresh cluster; ``pg.connection`` is Airflow's connection."""

    def __init__(self, bin_dir: str | None = None) -> None:
        found = bin_dir or postgres_bin_dir()
        if found is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.bin_dir = found
        self.port = 0
        self._base = ""
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def data_dir(self) -> str:
        return os.path.join(self._base, "data")

    @property
    def log_path(self) -> str:
        return os.path.join(self._base, "log")

    def start(self) -> PostgresCluster:
        self._base = tempfile.mkdtemp(prefix="patsnap-pg-")
        if self._as_postgres:
            shutil.chown(self._base, "postgres", "postgres")
        self.port = free_port()
        initdb = [f"{self.bin_dir}/initdb", "-D", self.data_dir, "-A", "trust", "-U", "postgres"]
        self._run([*initdb, "-E", "UTF8", "--no-locale"])
        options = f"-p {self.port} -k {self._base} -c listen_addresses=127.0.0.1 -c fsync=off"
        try:
            self._run(["start", "-o", options, "-l", self.log_path, "-w"], pg_ctl=True)
        except subprocess.CalledProcessError:
            shutil.rmtree(self._base, ignore_errors=True)
            raise
        return self

    def stop(self) -> None:
        """Stop at once (no checkpoint: nothing here is kept) and remove the files; safe to call twice."""
        if not self._base:
            return
        self._run(["stop", "-m", "immediate", "-w"], pg_ctl=True, check=False)
        shutil.rmtree(self._base, ignore_errors=True)
        self._base = ""

    def _run(self, args: list[str], *, pg_ctl: bool = False, check: bool = True) -> None:
        command = [f"{self.bin_dir}/pg_ctl", "-D", self.data_dir, *args] if pg_ctl else args
        subprocess.run([*self._as_postgres, *command], check=check, capture_output=True)

    @property
    def connection(self) -> dict[str, Any]:
        """An Airflow ``postgres`` connection to the ``postgres`` database as the superuser."""
        return {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": self.port,
            "login": "postgres",
            "schema": "postgres",
        }

    @property
    def sqlalchemy_url(self) -> str:
        """The cluster's ``postgres`` database as the superuser, for Airflow's ``sql_alchemy_conn``."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def connection_json(self) -> str:
        return json.dumps(self.connection)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def postgres_server_json() -> Iterator[str]:
    """A throwaway cluster for a ``postgres_server`` fixture: its connection JSON, or the test skipped
    (failed on CI) when PostgreSQL is not installed. The scripts that start a cluster run without pytest."""
    import pytest

    if postgres_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    with PostgresCluster() as cluster:
        yield cluster.connection_json
