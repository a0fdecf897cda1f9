"""``make e2e-celery``: the sharded example on a CeleryExecutor deployment on loopback, checked end to end.

PostgreSQL (a throwaway cluster, tests/postgres_cluster.py) is the metadata DB and the Celery result
backend, Redis (Debian's redis-server, no persistence) the broker; the api-server, scheduler and
dag-processor run as in ``make e2e``, plus two ``airflow celery worker`` processes that take one task at
a time and name themselves (``worker_name.py``), so each task instance's ``hostname`` says which ran it.
The sandbox answers at the vendor's total QPS. Runs with the venv that has the celery provider
(``.venv-celery``); writes everything under ``--artifacts``; exits 1 on any failed check.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from checks import (
    Check,
    max_overlap,
    patent_list,
    rows_exactly_once,
    scan_for_secrets,
    warehouse_tables,
    write_summary,
)
from deployment import Deployment, session_members
from rest import TERMINAL_RUN_STATES, AirflowApi, wait_for
from stack import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    DAGS_FOLDER,
    VENDOR_QPS,
    AirflowSettings,
    VendorSandbox,
    free_port,
    patsnap_connection,
)
from worker_name import WORKER_NAME_ENV

from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.sandbox.app import ApiRequest, Outcome, SandboxApp
from tests.postgres_cluster import PostgresCluster

REPO = Path(__file__).resolve().parents[2]
SHARDED, SHARD_TASK = "patsnap_sharded_enrichment", "legal_information"
LEGAL = next(e for e in ENDPOINTS.values() if e.default_table == "patsnap_legal_information")
POOL, POOL_SLOTS = "patsnap_api", 2
WORKERS = ("worker-1", "worker-2")
RATE_LIMIT_CODE = "67200002"
IDS_PER_CALL = 100  # the vendor's most ids per call: QPS x 100 is the most patents a second


class Redis:
    """``redis-server`` on a free loopback port, nothing saved to disk, stopped by PID with SIGINT."""

    def __init__(self, log: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: apt-get install redis-server")
        self.port = free_port()
        self.log = log
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ready(self) -> bool:
        return "Ready to accept connections" in self.log.read_text(errors="replace")

    def stop(self) -> bool:
        """SIGINT to its PID; True when it ended on that (SIGKILL only if it did not)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
            return True
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return False


class PairGate:
    """Holds the first shard's call at the vendor until a second shard's call arrives (or ``timeout``).

    Each worker takes one task at a time, so a second call while the first is held can only come from
    the other worker: the run then has shards on both, however the broker spreads them. Without it,
    one warm worker finishes each 100-id shard (one call) before the next is queued.
    """

    def __init__(self, app: SandboxApp, path: str, timeout: float = 180) -> None:
        self._handle, self._path, self._timeout = app.handle, path, timeout
        self._lock = threading.Lock()
        self._second_arrived = threading.Event()
        self._calls = 0
        self.paired = False
        app.handle = self.handle  # type: ignore[method-assign]

    def handle(self, request: ApiRequest) -> Outcome:
        if request.path == self._path:
            with self._lock:
                self._calls += 1
                position = self._calls
            if position == 1:
                self.paired = self._second_arrived.wait(self._timeout)
            elif position == 2:
                self._second_arrived.set()
        return self._handle(request)


class CeleryEndToEnd:
    def __init__(self, artifacts: Path) -> None:
        self.artifacts = artifacts
        self.logs = artifacts / "logs"
        self.home = artifacts / "airflow-home"
        for directory in (self.logs, artifacts / "pages", self.home):
            directory.mkdir(parents=True, exist_ok=True)
        self.settings = AirflowSettings(REPO, self.home, Path(sys.executable).parent)
        self.sandbox = VendorSandbox()
        self.postgres = PostgresCluster()
        self.redis: Redis | None = None
        self.gate: PairGate | None = None
        self.deployment: Deployment | None = None
        self.api = AirflowApi(self.settings.base_url, ADMIN_USER, ADMIN_PASSWORD, artifacts / "pages")
        self.checks: list[Check] = []
        self.timings: dict[str, float] = {}
        self.observations: dict[str, str] = {}
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.timings[text] = round(elapsed, 1)
        print(f"== [{elapsed:6.1f}s] {text}", flush=True)

    def record(self, name: str, ok: bool, detail: str, **data: Any) -> None:
        self.checks.append(Check(name, ok, detail, data))
        print(f"   {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    def env(self) -> dict[str, str]:
        assert self.redis is not None
        database = self.postgres.sqlalchemy_url
        return {
            **self.settings.env(metadata_db=database),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database}",
            # One task at a time per worker, none reserved ahead: a busy worker leaves the next shard to
            # the other one, as separate machines would.
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        }

    def bring_up(self) -> None:
        self.step("PostgreSQL (metadata DB, result backend), Redis (broker), the sandbox")
        self.postgres.start()
        self.redis = Redis(self.logs / "redis.log")
        wait_for("Redis to accept connections", self.redis.ready, timeout=30, interval=0.2)
        self.sandbox.start()
        assert self.sandbox.app is not None
        self.gate = PairGate(self.sandbox.app, LEGAL.path)
        env = self.env()
        migrate = subprocess.run(
            [self.settings.airflow_bin, "db", "migrate"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        (self.logs / "cli-db-migrate.log").write_text(migrate.stdout + migrate.stderr, encoding="utf-8")
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed: {migrate.stderr[-2000:]}")
        self.step("starting api-server, scheduler (CeleryExecutor), dag-processor and two celery workers")
        self.deployment = Deployment(self.settings.airflow_bin, env, self.logs)
        for command in ("api-server", "scheduler", "dag-processor"):
            self.deployment.start(command, command)
        for name in WORKERS:
            worker_env = {
                WORKER_NAME_ENV: name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.e2e.worker_name.hostname",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            }
            command = f"celery worker --celery-hostname {name}@%h --concurrency 1"
            self.deployment.start(command, name, env=worker_env)
        wait_for("the API server's health", self.api.healthy, timeout=180)
        wait_for(
            "the sharded DAG to be parsed", lambda: SHARDED in self.api.dag_ids(), timeout=240, interval=2
        )
        wait_for("both celery workers", self.workers_ready, timeout=120, interval=1)
        self.observations["deployment"] = (
            f"CeleryExecutor; metadata DB and result backend PostgreSQL on 127.0.0.1:{self.postgres.port}; "
            f"broker Redis on 127.0.0.1:{self.redis.port}; workers {', '.join(WORKERS)} (concurrency 1 each)"
        )
        self.step("connections and pool through the REST API")
        connection = patsnap_connection(self.api.hook_meta("patsnap"), "patsnap_default", self.sandbox)
        self.api.create_connection(connection)
        self.api.create_connection(
            {"connection_id": "patsnap_warehouse", "conn_type": "sqlite", "host": str(self.warehouse)}
        )
        self.api.create_pool(POOL, POOL_SLOTS, f"PatSnap API: {POOL_SLOTS} slots x 2.5 qps = vendor QPS 5")

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.db"

    def workers_ready(self) -> bool:
        assert self.deployment is not None
        logs = [(self.logs / f"{name}.log").read_text(errors="replace") for name in WORKERS]
        return all(" ready." in text for text in logs)

    def run_sharded(self) -> list[dict[str, Any]]:
        self.step(f"triggering {SHARDED}")
        self.api.unpause(SHARDED)
        run_id = self.api.trigger(SHARDED)

        def finished() -> str | None:
            state = self.api.run_state(SHARDED, run_id)
            return state if state in TERMINAL_RUN_STATES else None

        state = wait_for(f"{SHARDED} to finish", finished, timeout=420, interval=2)
        tis = self.api.task_instances(SHARDED, run_id)
        self.record(f"{SHARDED} run", state == "success", f"{state}; {len(tis)} task instances")
        return [ti for ti in tis if ti["task_id"] == SHARD_TASK]

    def check(self, shards: list[dict[str, Any]]) -> None:
        self.step("checking workers, the pool, the vendor's ledger and the warehouse")
        hosts = sorted({str(ti.get("hostname")) for ti in shards})
        per_worker = {name: sum(ti.get("hostname") == name for ti in shards) for name in WORKERS}
        self.record(
            "mapped shards ran on both workers",
            len(shards) > 1 and set(hosts) == set(WORKERS),
            f"{len(shards)} shards; hostnames {hosts}; per worker {per_worker}",
        )
        self.record(
            "pool held",
            max_overlap(shards) <= POOL_SLOTS,
            f"at most {max_overlap(shards)} shards at once; pool slots {POOL_SLOTS}",
        )
        with urllib.request.urlopen(f"{self.sandbox.base_url}/_sandbox/stats", timeout=10) as answer:
            stats = json.load(answer)
        rejections, calls = stats["errors"].get(RATE_LIMIT_CODE, 0), stats["business_calls"]
        self.record(
            "two shards at the vendor at once",
            self.gate is not None and self.gate.paired and stats["max_in_flight"] == POOL_SLOTS,
            f"the first shard's call saw a second one arrive: {self.gate and self.gate.paired}; most calls "
            f"in flight {stats['max_in_flight']} (pool slots {POOL_SLOTS})",
        )
        self.record(
            "no rate-limit rejections at the vendor's QPS",
            rejections == 0,
            f"{RATE_LIMIT_CODE} answers: {rejections}; business calls {calls}; sandbox QPS {VENDOR_QPS:g}",
        )
        patents = patent_list(DAGS_FOLDER / "data" / "patents.csv")
        counts = warehouse_tables(self.warehouse, patents, [LEGAL])
        self.record(
            "the whole list landed exactly once",
            rows_exactly_once(counts),
            "; ".join(f"{c.table} {c.found}/{c.expected} (distinct {c.distinct})" for c in counts),
        )
        starts = [moment(ti["start_date"]) for ti in shards if ti.get("start_date")]
        ends = [moment(ti["end_date"]) for ti in shards if ti.get("end_date")]
        if starts and ends:
            seconds = (max(ends) - min(starts)).total_seconds()
            rate = len(patents) / seconds if seconds > 0 else 0.0
            self.observations["throughput"] = (
                f"{len(patents)} patents in {len(shards)} shards on {len(WORKERS)} workers: {seconds:.1f} s "
                f"from the first shard's start to the last one's end, {rate:.1f} patents/s; the limit is "
                f"QPS x {IDS_PER_CALL} = {VENDOR_QPS * IDS_PER_CALL:.0f} patents/s"
            )

    def check_secrets(self) -> None:
        self.step("scanning every log for secrets")
        needles = {"client secret": [self.sandbox.client_secret], "OAuth token": self.sandbox.issued_tokens()}
        scanned, hits = scan_for_secrets([self.logs, self.home / "logs", self.artifacts / "pages"], needles)
        self.record(
            "no secret in any log or page",
            scanned > 0 and not hits and bool(needles["OAuth token"]),
            f"{scanned} files scanned; hits: {[(hit.path, hit.secret) for hit in hits]}",
        )

    def stop(self) -> None:
        self.step("stopping every component, Redis and PostgreSQL by PID")
        stubborn: dict[str, list[int]] = {}
        left: list[int] = []
        if self.deployment is not None:
            stubborn = self.deployment.stop_all()
            left = self.deployment.leftovers()
        redis_clean = self.redis.stop() if self.redis is not None else True
        if self.redis is not None:
            left += session_members(self.redis.process.pid)
        self.sandbox.stop()
        self.postgres.stop()
        self.record(
            "everything stopped on SIGINT, nothing left",
            not stubborn and not left and redis_clean,
            f"needed SIGKILL: {stubborn}; Redis ended on SIGINT: {redis_clean}; still running: {left}",
        )

    def summary(self) -> int:
        elapsed = time.monotonic() - self.started
        return write_summary(self.artifacts, self.checks, self.observations, self.timings, elapsed)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artifacts", type=Path, required=True)
    args = parser.parse_args()
    run = CeleryEndToEnd(args.artifacts.resolve())
    # SIGTERM (the budget's timeout, CI cancelling) takes the same way out as an error.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run.bring_up()
        run.check(run.run_sharded())
    except Exception as error:  # every failure still stops what was started and writes the summary
        run.record("run", False, f"{type(error).__name__}: {error}")
    finally:
        try:
            run.check_secrets()
        except Exception as error:
            run.record("secrets scan", False, f"{type(error).__name__}: {error}")
        run.stop()
    return run.summary()


if __name__ == "__main__":
    sys.exit(main())
