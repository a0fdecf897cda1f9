"""The services ``make e2e-celery``'s deployment reaches over loopback TCP, each in its own session.

Redis (the Celery broker, and the shared PatSnap rate limit) and an S3-compatible object store (moto's
server, where the report lands): both started by path, on a free port, with nothing kept after the run,
and stopped by PID with SIGINT.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from stack import free_port


class _Service:
    """A process in its own session, its output in ``log``, stopped by PID (SIGKILL only if SIGINT fails)."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> bool:
        """SIGINT to its PID; True when it ended on that."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
            return True
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return False


class Redis(_Service):
    """``redis-server`` on a free loopback port, nothing saved to disk."""

    def __init__(self, log: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: apt-get install redis-server")
        self.port = free_port()
        super().__init__(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], log
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ready(self) -> bool:
        return "Ready to accept connections" in self.log.read_text(errors="replace")

    def connection(self, conn_id: str) -> dict[str, Any]:
        """An Airflow ``redis`` connection to it (the body of ``POST /api/v2/connections``)."""
        return {
            "connection_id": conn_id,
            "conn_type": "redis",
            "host": "127.0.0.1",
            "port": self.port,
            "extra": '{"db": 0}',
        }


class ObjectStore(_Service):
    """moto's S3 server (``moto_server``, from the venv) on a free loopback port, buckets in memory.

    What the workers reach is the S3 API over HTTP, through Airflow's ``aws`` connection and s3fs, as
    they would reach a real bucket from separate machines: no file of it is on a disk they could share.
    """

    def __init__(self, venv_bin: Path, log: Path, access_key: str, secret_key: str) -> None:
        self.port = free_port()
        self.access_key, self.secret_key = access_key, secret_key
        super().__init__([str(venv_bin / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)], log)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint_url + "/", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

    def connection(self, conn_id: str) -> dict[str, Any]:
        """An Airflow ``aws`` connection to it: ``s3://<conn_id>@bucket/...`` paths then reach it."""
        return {
            "connection_id": conn_id,
            "conn_type": "aws",
            "login": self.access_key,
            "password": self.secret_key,
            "extra": json.dumps({"endpoint_url": self.endpoint_url, "region_name": "us-east-1"}),
        }

    def objects(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Every object under ``prefix``: key -> size in bytes."""
        listing = self.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
        return {item["Key"]: int(item["Size"]) for item in listing.get("Contents", [])}
