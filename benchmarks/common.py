"""Helpers shared by the benchmark and soak scripts (not part of the package).

- :class:`SandboxProcess` runs ``python -m airflow_provider_patsnap.sandbox`` in its own process, so the
  emulator's CPU (JSON encoding, HTTP parsing) is not charged to the client being measured, and talks
  to its ``/_sandbox/`` admin API. :class:`SandboxCpu` reads that process's CPU over a stretch of a
  run, so every figure can say what the sandbox itself used beside it (a figure is the client's only
  while the sandbox is not the bottleneck).
- :func:`airflow_env` prepares a throw-away ``AIRFLOW_HOME`` and the connections as ``AIRFLOW_CONN_*``
  environment variables, so no metadata database is needed.
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the benchmarks run as scripts: `python benchmarks/x.py`
    sys.path.insert(0, str(REPO))

from scripts.airflow_env import airflow_env as repository_airflow_env  # noqa: E402

PATENTS_PER_CALL = 100


# ----------------------------------------------------------------------------------------- output


def print_check(name: str, ok: bool, detail: str) -> None:
    """One line per check: ``PASS  name: figures``."""
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def dump_json(path: str | os.PathLike[str], data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    mem_total = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    mem_total = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        import importlib.metadata as metadata

        airflow_version = metadata.version("apache-airflow")
    except Exception:  # pragma: no cover - reported, not needed
        airflow_version = "not installed"
    return {
        "cores": os.cpu_count(),
        "ram_gb": mem_total,
        "cpu": platform.processor() or platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "airflow": airflow_version,
    }


# ----------------------------------------------------------------------------------------- inputs


# The data operator of each endpoint, by name: the parent processes choose one without importing Airflow.
OPERATOR_NAMES = {
    "P022": "PatsnapSeicClassificationOperator",
    "P026": "PatsnapLegalInformationOperator",
    "P031": "PatsnapCustomsRecordOperator",
    "P032": "PatsnapAwardOperator",
}


def operator_class(code: str) -> Any:
    """The data operator class for an endpoint code (imports the provider's operators)."""
    from airflow_provider_patsnap.operators import patsnap

    return getattr(patsnap, OPERATOR_NAMES[code])


def patent_numbers(count: int, start: int = 0, prefix: str = "CN") -> list[str]:
    """``count`` distinct, valid-looking patent numbers; the sandbox has no data for about 1 in 10."""
    return [f"{prefix}{110000000 + start + index}A" for index in range(count)]


def iter_patent_numbers(count: int, start: int = 0, prefix: str = "CN") -> Iterator[str]:
    for index in range(count):
        yield f"{prefix}{110000000 + start + index}A"


# ----------------------------------------------------------------------------------------- sandbox


class SandboxProcess:
    """The sandbox CLI in a child process on a free loopback port, with fresh random credentials."""

    def __init__(self, *flags: str, log_path: str | os.PathLike[str] | None = None) -> None:
        self.client_id = f"bench-client-{secrets.token_hex(6)}"
        self.client_secret = f"bench-secret-{secrets.token_hex(12)}"
        self.api_key = f"sk-bench-{secrets.token_hex(12)}"
        cmd = [
            sys.executable,
            "-m",
            "airflow_provider_patsnap.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--client-id",
            self.client_id,
            "--client-secret",
            self.client_secret,
            "--api-key",
            self.api_key,
            *flags,
        ]
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {key: value for key, value in os.environ.items() if not key.startswith("PATSNAP_SANDBOX_")}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._log, env=env, text=True, start_new_session=True
        )
        self.base_url = self._wait_for_url(timeout=30)

    def _wait_for_url(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                match = re.search(r"listening on (http://\S+)", line)
                if match:
                    return match.group(1)
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the sandbox did not start (exit code {self.proc.poll()})")

    def connection(self, auth: str = "secret", **extra: Any) -> dict[str, Any]:
        conn: dict[str, Any] = {"conn_type": "patsnap", "host": self.base_url, "extra": extra}
        if auth == "secret":
            conn.update(login=self.client_id, password=self.client_secret)
        else:
            conn["password"] = self.api_key
        return conn

    def connection_json(self, auth: str = "secret", **extra: Any) -> str:
        return json.dumps(self.connection(auth, **extra))

    def admin(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.base_url}/_sandbox/{path}", method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read().decode("utf-8"))

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "stats")

    def expire_tokens(self) -> Any:
        return self.admin("POST", "expire-tokens")

    def set_fault_rate(self, rate: float) -> Any:
        return self.admin("POST", f"fault-rate?rate={rate}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU the sandbox process has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def rss_mb(self) -> float | None:
        """The sandbox process's resident memory now, in MB (Linux /proc)."""
        try:
            pages = int(Path(f"/proc/{self.proc.pid}/statm").read_text().split()[1])
            return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
        except (OSError, IndexError, ValueError):
            return None

    def cpu_window(self) -> SandboxCpu:
        """Start measuring the sandbox's CPU from now; ``.stop()`` gives the figures."""
        return SandboxCpu(self)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SandboxCpu:
    """The sandbox process's CPU between this object's creation and :meth:`stop`, and the wall time."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self._sandbox = sandbox
        self._cpu = sandbox.cpu_seconds()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float | None]:
        """``sandbox_cpu_s``, ``sandbox_wall_s`` and ``sandbox_cores`` (CPU / wall); None without /proc."""
        wall = time.perf_counter() - self._wall
        now = self._sandbox.cpu_seconds()
        cpu = None if now is None or self._cpu is None else now - self._cpu
        return {
            "sandbox_cpu_s": None if cpu is None else round(cpu, 2),
            "sandbox_wall_s": round(wall, 1),
            "sandbox_cores": None if cpu is None or wall <= 0 else round(cpu / wall, 3),
        }


def sandbox_cpu_text(figures: dict[str, Any]) -> str:
    """'sandbox CPU 12.3 s in 60.1 s = 0.20 cores' from figures holding :meth:`SandboxCpu.stop`'s keys."""
    cpu, wall, cores = (figures.get(key) for key in ("sandbox_cpu_s", "sandbox_wall_s", "sandbox_cores"))
    if cpu is None or cores is None:
        return "sandbox CPU not measured"
    return f"sandbox CPU {cpu:g} s in {wall:g} s = {cores:.2f} cores"


def _proc_cpu(pid: int, reaped: bool = False) -> float:
    """User + system CPU of ``pid`` (with ``reaped``, of its children waited for too), in clock ticks;
    0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(field) for field in fields[11 : 15 if reaped else 13])


class ProcessTreeCpu:
    """The CPU of a server process and its children (a PostgreSQL postmaster and its backends): its own,
    its children's that ended and were waited for, and its live children's (Linux /proc)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            children = []
        ticks = _proc_cpu(self.pid, reaped=True) + sum(_proc_cpu(int(child)) for child in children)
        return ticks / self._tick


def server_on_port(program: str, port: int) -> int | None:
    """The pid of the process running ``program`` with ``-p <port>`` on its command line (PostgreSQL's
    postmaster as ``pg_ctl -o "-p <port>"`` starts it), or None."""
    wanted = f"-p\0{port}\0".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if wanted in cmdline and program.encode() in cmdline.split(b"\0", 1)[0]:
            return int(entry.name)
    return None


def sandbox_flags(
    *,
    latency: float,
    qps: float,
    fault_rate: float = 0.0,
    faults: Sequence[str] = (),
    slow_seconds: float | None = None,
    seed: int | None = None,
) -> list[str]:
    flags = ["--latency", str(latency), "--qps", str(qps), "--fault-rate", str(fault_rate)]
    if faults:
        flags += ["--faults", ",".join(faults)]
    if slow_seconds is not None:
        flags += ["--slow-seconds", str(slow_seconds)]
    if seed is not None:
        flags += ["--seed", str(seed)]
    return flags


# ----------------------------------------------------------------------------------------- airflow


def airflow_env(
    workdir: str | os.PathLike[str] | None = None,
    *,
    connections: dict[str, dict[str, Any] | str] | None = None,
    apply: bool = True,
    log_level: str = "WARNING",
) -> dict[str, str]:
    """Environment for Airflow code without a metadata DB: a private AIRFLOW_HOME, connections as env.

    With ``apply`` the variables are also set in ``os.environ`` (call before importing airflow).
    ``log_level`` WARNING keeps one INFO line per batch from drowning the figures.
    """
    home = Path(workdir or tempfile.mkdtemp(prefix="patsnap-bench-")) / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**repository_airflow_env(home), "AIRFLOW__LOGGING__LOGGING_LEVEL": log_level}
    for conn_id, conn in (connections or {}).items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn if isinstance(conn, str) else json.dumps(conn)
    if apply:
        os.environ.update(env)
    return env


def sqlite_connection(path: str | os.PathLike[str]) -> dict[str, Any]:
    return {"conn_type": "sqlite", "host": str(Path(path).resolve())}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
