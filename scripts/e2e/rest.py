"""A small client of Airflow 3's REST API (``/api/v2``, ``/ui``) with a JWT from ``/auth/token``.

Standard library only. Every response body is also written to ``pages_dir``, so the secrets scan covers
what the API server sent as well as what the processes logged.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

TERMINAL_RUN_STATES = ("success", "failed")


class ApiError(Exception):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str, pages_dir: Path) -> None:
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._pages_dir = pages_dir
        self._token: str | None = None
        self._saved = 0

    # ------------------------------------------------------------------------------------- transport

    def healthy(self) -> bool:
        try:
            health = self._send("GET", "/api/v2/monitor/health", None, authorized=False)
        except (OSError, ApiError):
            return False
        return bool(health.get("metadatabase", {}).get("status") == "healthy")

    def token(self) -> str:
        if self._token is None:
            body = {"username": self._username, "password": self._password}
            self._token = str(self._send("POST", "/auth/token", body, authorized=False)["access_token"])
        return self._token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return self._send(method, path, body, authorized=True)

    def _send(self, method: str, path: str, body: Any, *, authorized: bool) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if authorized:
            request.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            raise ApiError(method, path, error.code, error.read().decode("utf-8", "replace")) from None
        if authorized:
            self._save(method, path, text)
        return json.loads(text) if text else None

    def _save(self, method: str, path: str, text: str) -> None:
        self._saved += 1
        name = re.sub(r"[^A-Za-z0-9]+", "_", f"{method} {path}").strip("_")[:100]
        (self._pages_dir / f"{self._saved:04d}_{name}.json").write_text(text, encoding="utf-8")

    # ------------------------------------------------------------------------------------- resources

    def dag_ids(self) -> set[str]:
        return {dag["dag_id"] for dag in self.call("GET", "/api/v2/dags?limit=100")["dags"]}

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.dag_run(dag_id, run_id)["state"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"))

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"])

    def upstream_asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The asset events that made the scheduler create an asset-triggered run."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/upstreamAssetEvents"
        return list(self.call("GET", path)["asset_events"])

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/api/v2/importErrors?limit=100")["import_errors"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=1000"
        return list(self.call("GET", path)["task_instances"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
        return dict(self.call("GET", path))

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> Any:
        """A task instance's log as the API server reads it (local file, or the worker's log server)."""
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/"
            f"{try_number}?map_index={map_index}&full_content=true"
        )
        return self.call("GET", path)

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
            "/xcomEntries/return_value?deserialize=true"
        )
        return self.call("GET", path)["value"]

    def triggerer_jobs(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/api/v2/jobs?job_type=TriggererJob&limit=100")["jobs"])

    def create_pool(self, name: str, slots: int, description: str) -> None:
        self.call("POST", "/api/v2/pools", {"name": name, "slots": slots, "description": description})

    def create_connection(self, connection: dict[str, Any]) -> None:
        self.call("POST", "/api/v2/connections", connection)

    def hook_meta(self, conn_type: str) -> dict[str, Any]:
        for hook in self.call("GET", "/ui/connections/hook_meta"):
            if hook.get("connection_type") == conn_type:
                return dict(hook)
        raise LookupError(f"no connection type {conn_type!r} in /ui/connections/hook_meta")


def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Call ``probe`` until it returns something truthy; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
