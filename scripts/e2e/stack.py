"""The pieces of the end-to-end deployment: the sandbox vendor, the Airflow environment, the settings.

The sandbox runs in this process (threads) and remembers every token it issued, so the secrets scan can
look for each of them; everything else reaches it over loopback HTTP.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import airflow_provider_patsnap
from airflow_provider_patsnap.sandbox import RunningServers, SandboxApp, SandboxConfig, start_servers
from scripts.airflow_env import airflow_env

# What the wheel ships: airflow_provider_patsnap/example_dags, the repository's example_dags/.
DAGS_FOLDER = Path(airflow_provider_patsnap.__file__).parent / "example_dags"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"
VENDOR_QPS = 5.0  # the sandbox's server-side limit; the connection's qps (hook_meta's default) must match
REPORT_DELAY = 45.0  # long enough to SIGKILL the triggerer and have a new one pick the sensor up
REPORT_POLL_SECONDS = 2


@dataclass
class VendorSandbox:
    """The PatSnap sandbox with a per-run client secret, so a hit in the scan can only be a leak."""

    client_id: str = "e2e-client"
    client_secret: str = field(default_factory=lambda: "e2e-secret-" + secrets.token_hex(12))
    qps: float = VENDOR_QPS
    burst: float | None = None  # None: the sandbox's default, a burst of qps
    latency: float = 0.1
    latency_jitter: float = 0.0  # each call takes latency + uniform(0, latency_jitter) seconds
    report_delay: float = REPORT_DELAY
    servers: RunningServers | None = None
    app: SandboxApp | None = None
    _issued: list[str] = field(default_factory=list)
    _issued_lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> VendorSandbox:
        config = SandboxConfig(
            qps=self.qps,
            burst=self.burst,
            latency=self.latency,
            latency_jitter=self.latency_jitter,
            report_delay=self.report_delay,
            client_id=self.client_id,
            client_secret=self.client_secret,
        )
        self.app = app = SandboxApp(config)
        issue = app.tokens.issue

        def issue_and_remember(*args: Any, **kwargs: Any) -> str:
            token = issue(*args, **kwargs)
            with self._issued_lock:
                self._issued.append(token)
            return token

        app.tokens.issue = issue_and_remember  # type: ignore[method-assign]
        self.servers = start_servers(app)
        return self

    def download_url(self, job_id: str) -> str | None:
        """The presigned link of a finished report job: the one its first 'done' answer carried."""
        if self.app is None:
            raise RuntimeError("the sandbox is not running")
        return self.app.jobs.status(job_id, "http://unused")["download_url"]

    @property
    def port(self) -> int:
        if self.servers is None:
            raise RuntimeError("the sandbox is not running")
        return int(self.servers.api.port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def issued_tokens(self) -> list[str]:
        """Every OAuth token the sandbox issued (for the secrets scan)."""
        with self._issued_lock:
            return list(self._issued)

    def stop(self) -> None:
        servers, self.servers = self.servers, None
        if servers is not None:
            servers.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class AirflowSettings:
    repo: Path
    home: Path
    venv_bin: Path
    api_port: int = field(default_factory=free_port)
    dags_folder: Path = DAGS_FOLDER

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def airflow_bin(self) -> str:
        return str(self.venv_bin / "airflow")

    def env(self, metadata_db: str | None = None) -> dict[str, str]:
        """The environment of every Airflow process: one home, one metadata DB, loopback only."""
        from cryptography.fernet import Fernet

        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}), encoding="utf-8")
        env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
        env.update(
            {
                **airflow_env(self.home, dags_folder=self.dags_folder, metadata_db=metadata_db),
                "PATH": f"{self.venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYTHONPATH": str(self.repo),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode("ascii"),
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                # A SIGKILLed triggerer's sensors move to a new one after this many seconds of silence.
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "PATSNAP_REPORT_POLL_SECONDS": str(REPORT_POLL_SECONDS),
            }
        )
        for name in ("PYTHONDONTWRITEBYTECODE",):
            env.pop(name, None)
        return env


def patsnap_connection(hook_meta: dict[str, Any], conn_id: str, sandbox: VendorSandbox) -> dict[str, Any]:
    """The body the UI's Add Connection form posts: its extra fields at their hook_meta defaults."""
    extras = {
        name: field_spec.get("value", (field_spec.get("schema") or {}).get("default"))
        for name, field_spec in (hook_meta.get("extra_fields") or {}).items()
    }
    return {
        "connection_id": conn_id,
        "conn_type": "patsnap",
        "host": sandbox.base_url,
        "login": sandbox.client_id,
        "password": sandbox.client_secret,
        "extra": json.dumps(extras),
    }


def expected_extra_fields() -> dict[str, dict[str, Any]]:
    """Label and default of each extra field, as the provider describes them to Airflow 3.2+."""
    from airflow_provider_patsnap import get_provider_info

    (connection_type,) = get_provider_info()["connection-types"]
    return {
        name: {"label": spec["label"], "default": spec["schema"].get("default")}
        for name, spec in connection_type["conn-fields"].items()
    }
