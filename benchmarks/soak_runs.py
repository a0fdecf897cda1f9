"""The soak driver's side of the task processes: start them, wait for them, stop them, read what they left.

Also the soak's shared state (:class:`Soak`: settings, sandbox, every run, every check) and the
sandbox admin calls the stages need beyond :class:`common.SandboxProcess`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import SandboxProcess, airflow_env, print_check
from soak_task import CONN_ID, TaskSpec

TASK_SCRIPT = Path(__file__).resolve().parent / "soak_task.py"


class Run:
    """One task process and the files it leaves behind (``<workdir>/<name>.*``)."""

    def __init__(
        self, soak: Soak, name: str, kind: str, warehouse: dict[str, Any] | None, qps: float, **spec: Any
    ) -> None:
        workdir = soak.workdir
        self.name = name
        self.log = workdir / f"{name}.log"
        self.out = workdir / f"{name}.out"
        self.tokens = workdir / f"{name}.tokens"
        self.summary_path = workdir / f"{name}.summary.json"
        self.stopped_path = workdir / f"{name}.stopped.json"
        self.ready_path = workdir / f"{name}.ready"
        paths = (self.log, self.out, self.tokens, self.summary_path, self.stopped_path, self.ready_path)
        for path in paths:
            path.unlink(missing_ok=True)
        spec_path = workdir / f"{name}.spec.json"
        TaskSpec(
            kind=kind,
            log=str(self.log),
            tokens=str(self.tokens),
            summary=str(self.summary_path),
            stopped=str(self.stopped_path),
            ready=str(self.ready_path),
            **spec,
        ).write(spec_path)
        connections: dict[str, dict[str, Any] | str] = {
            CONN_ID: soak.sandbox.connection(qps=qps, timeout=soak.args.timeout)
        }
        if warehouse is not None:
            connections[spec["sql_conn_id"]] = warehouse
        env = {
            **os.environ,
            **airflow_env(workdir, connections=connections, apply=False, log_level="DEBUG"),
        }
        self._out = open(self.out, "wb")  # noqa: SIM115 - closed once the process ended
        self.started = time.monotonic()
        self.seconds = 0.0
        self.proc = subprocess.Popen(
            [sys.executable, str(TASK_SCRIPT), str(spec_path)],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        soak.runs.append(self)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(
                f"run {self.name!r} did not finish in {timeout:.0f} s (see {self.out})"
            ) from None
        finally:
            self._out.close()
            self.seconds = time.monotonic() - self.started

    def signal(self, signum: int) -> float:
        """Send ``signum``; return the wall-clock time just before it was sent."""
        sent_at = time.time()
        os.kill(self.proc.pid, signum)
        return sent_at

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(30)

    @property
    def summary(self) -> dict[str, Any]:
        if not self.summary_path.exists():
            return {}
        return dict(json.loads(self.summary_path.read_text(encoding="utf-8")))

    @property
    def on_kill_returned(self) -> float | None:
        """When the task's SIGTERM handler had called ``on_kill`` (wall clock), if it ran."""
        if not self.stopped_path.exists():
            return None
        return float(json.loads(self.stopped_path.read_text(encoding="utf-8"))["on_kill_returned"])

    @property
    def issued_tokens(self) -> list[str]:
        if not self.tokens.exists():
            return []
        return [line for line in self.tokens.read_text(encoding="utf-8").splitlines() if line]


class Soak:
    """Settings, the sandbox, every run and every check of one soak."""

    def __init__(self, args: argparse.Namespace, workdir: Path, sandbox: SandboxProcess) -> None:
        self.args = args
        self.workdir = workdir
        self.sandbox = sandbox
        self.runs: list[Run] = []
        self.results: list[bool] = []
        from airflow_provider_patsnap.endpoints import ENDPOINTS

        self.endpoint = ENDPOINTS[args.endpoint]
        self.compared = [name for name in self.endpoint.column_names if name != "fetched_at"]
        self.key_columns = list(self.endpoint.key_columns)
        self.reference_db = workdir / "reference.db"
        self.expected_calls = -(-args.patents // 100)
        # A run's calls, plus retries, at the QPS; faults add back-off and 1 s timeouts; Python start-up.
        self.run_budget = 120 + 4 * self.expected_calls / args.qps

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.results.append(ok)
        print_check(name, ok, detail)
        return ok

    def finished(self, run: Run, name: str, expect_exit: int = 0) -> bool:
        """Wait for ``run``; an unexpected exit status is a failed check named ``name``."""
        code = run.wait(self.run_budget)
        if code != expect_exit:
            error = run.summary.get("error", "")[:300]
            self.check(name, False, f"exit code {code}; see {run.out} and {run.log}. {error}")
        return code == expect_exit

    # --- the sandbox, beyond SandboxProcess ------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return self.sandbox.stats()

    def ledger_cursor(self) -> int:
        """Where the next request will be in the sandbox's ledger (it is never cleared here)."""
        return int(self.stats()["requests"])

    def requests_since(self, cursor: int) -> list[dict[str, Any]]:
        return list(self.sandbox.admin("GET", f"requests?since={cursor}"))

    def lose_create_answers(self, count: int) -> None:
        self.sandbox.admin("POST", f"lose-create-answers?count={count}")

    def wait_for_calls(self, run: Run, target: int) -> int:
        """Poll until ``target`` business calls were answered in all (or the run ended)."""
        deadline = time.monotonic() + self.run_budget
        while time.monotonic() < deadline:
            calls = int(self.stats()["business_calls"])
            if calls >= target or run.proc.poll() is not None:
                return calls
            time.sleep(0.1)
        raise RuntimeError(f"run {run.name!r}: {target} calls not reached in {self.run_budget:.0f} s")

    def release_together(self, runs: list[Run], gate: Path) -> bool:
        """Once every run is ready to call ``execute``, let them all go at once; False if one died first."""
        deadline = time.monotonic() + self.run_budget
        while not all(run.ready_path.exists() for run in runs):
            if time.monotonic() > deadline or any(run.proc.poll() is not None for run in runs):
                gate.touch()
                return False
            time.sleep(0.05)
        gate.touch()
        return True

    def wait_until_idle(self, timeout: float = 30) -> None:
        """Until no business call is being handled: calls in flight are recorded when they end."""
        deadline = time.monotonic() + timeout
        while self.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.1)
