"""A local PatSnap Open API emulator for tests, demos and offline DAG development.

Standard library only (no Airflow, no requests), so it imports and starts in milliseconds::

    from airflow_provider_patsnap.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(qps=5, fault_rate=0.1)) as sandbox:
        os.environ["AIRFLOW_CONN_PATSNAP_DEFAULT"] = sandbox.connection_json()
        ...

or from a shell: ``python -m airflow_provider_patsnap.sandbox --port 8085``. See docs/sandbox.md.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Literal

from airflow_provider_patsnap.sandbox.app import SandboxApp, url_host
from airflow_provider_patsnap.sandbox.config import SandboxConfig
from airflow_provider_patsnap.sandbox.contract import FAULT_KINDS
from airflow_provider_patsnap.sandbox.http import RunningServers, start_servers
from airflow_provider_patsnap.sandbox.state import RequestRecord, SandboxClock

__all__ = ["FAULT_KINDS", "RequestRecord", "Sandbox", "SandboxClock", "SandboxConfig"]


class Sandbox:
    """Runs the API server and the download server ("another host") in daemon threads.

    ``clock`` is real time plus ``advance()`` by default; ``SandboxClock.frozen()`` stands still until
    ``advance()`` moves it.
    """

    def __init__(self, config: SandboxConfig | None = None, *, clock: SandboxClock | None = None) -> None:
        self._config = config or SandboxConfig()
        self._clock = clock or SandboxClock()
        self._app: SandboxApp | None = None
        self._servers: RunningServers | None = None

    # ------------------------------------------------------------------------------------- lifecycle

    def start(self) -> Sandbox:
        if self._servers is not None:
            raise RuntimeError("the sandbox is already running")
        app = SandboxApp(self._config, self._clock)
        self._servers = start_servers(app)
        self._app = app
        return self

    def stop(self) -> None:
        """Stop both servers and cut open keep-alive connections; safe to call twice."""
        servers, self._servers = self._servers, None
        if servers is not None:
            servers.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------- addresses

    @property
    def config(self) -> SandboxConfig:
        return self._config

    @property
    def port(self) -> int:
        return self._running().api.port

    @property
    def download_port(self) -> int:
        return self._running().downloads.port

    @property
    def base_url(self) -> str:
        return f"http://{url_host(self._config.host)}:{self.port}"

    @property
    def download_base_url(self) -> str:
        return f"http://{url_host(self._config.host)}:{self.download_port}"

    def connection_json(self, auth: Literal["secret", "key"] = "secret", **extra: Any) -> str:
        """JSON for ``AIRFLOW_CONN_PATSNAP_DEFAULT``; ``extra`` becomes the connection's extra."""
        connection: dict[str, Any] = {"conn_type": "patsnap", "host": self.base_url}
        if auth == "secret":
            connection.update(login=self._config.client_id, password=self._config.client_secret)
        elif auth == "key":
            connection["password"] = self._config.api_key
        else:
            raise ValueError(f"auth must be 'secret' or 'key', got {auth!r}")
        connection["extra"] = extra
        return json.dumps(connection, ensure_ascii=False)

    # ------------------------------------------------------------------------------------- control

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every finished request to the API server, in arrival order."""
        return self._state().ledger.records()

    def clear_requests(self) -> None:
        self._state().ledger.clear()

    def expire_tokens(self) -> None:
        """Invalidate every issued token: the next business call with one gets 67200003."""
        self._state().tokens.expire_all()

    def set_fault_rate(self, rate: float) -> None:
        self._state().faults.set_rate(rate)

    def advance(self, seconds: float) -> None:
        """Move the sandbox's clock forward: tokens, links and the rate limit age, report jobs progress.

        Latency and ``slow`` faults still take real time: they stand for the network.
        """
        self._clock.advance(seconds)

    def lose_create_answers(self, count: int) -> None:
        """The next ``count`` successful report creates make and bill their job, then drop the connection
        without an answer (``0`` cancels what is left)."""
        self._state().lost_creates.arm(count)

    def fail_token_requests(self, count: int) -> None:
        """The next ``count`` token requests get HTTP 503 from a gateway, as when the token service is
        down while the rest of the API is up (``0`` cancels what is left)."""
        self._state().token_outages.arm(count)

    @property
    def report_jobs_created(self) -> int:
        """Report jobs created so far, answered or not: each one is billed."""
        return int(self._state().stats()["reports_created"])

    def stats(self) -> dict[str, Any]:
        return self._state().stats()

    # ------------------------------------------------------------------------------------- internals

    def _running(self) -> RunningServers:
        if self._servers is None:
            raise RuntimeError("the sandbox is not running: call start() or use it as a context manager")
        return self._servers

    def _state(self) -> SandboxApp:
        if self._app is None:
            raise RuntimeError("the sandbox has not been started")
        return self._app
