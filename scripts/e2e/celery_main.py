"""``make e2e-celery``: one PatSnap client scaled out over two Celery workers that share no disk.

The deployment, all on loopback: a throwaway PostgreSQL cluster (tests/postgres_cluster.py) holds the
metadata DB, the Celery result backend and the ``warehouse`` database; Redis (Debian's redis-server, no
persistence) is the Celery broker and holds the shared PatSnap rate limit; moto's S3 server is the object
store; the api-server, scheduler and dag-processor share one ``AIRFLOW_HOME``; and two ``airflow celery
worker`` processes each have their own ``AIRFLOW_HOME``, log folder and temp dir (``TMPDIR``), and name
themselves by their own loopback address (127.0.0.2, 127.0.0.3), where each one's log server listens
(``worker_logs.py``): the API server fetches a task's log from the worker that ran it, as it does across
machines. The DAG files (``scripts/e2e/dags/``) are code every component reads, like a bundle; nothing a
task writes lands on a disk another process reads: rows go to PostgreSQL, the report to ``s3://``, logs
stay with their worker.

The sandbox plays PatSnap at QPS 20 (a burst of 5), each call taking 1 to 2 s. The same work runs twice,
16 mapped shards of a portfolio table through ``SqlIds(...).shards(16)``:

1. ``patsnap_scale_shared``: the PatSnap connection's ``rate_limit_redis_conn_id`` names the Redis
   connection; no pool and no per-task ``qps``. The report flow (create, wait, download to ``s3://``) runs
   beside it on the same connection.
2. ``patsnap_scale_pool``: the pool arithmetic, a pool of N slots (``--pool-slots``) and ``qps = 20 / N``
   per shard, no Redis.

Throughput is read from the sandbox's arrival stamps (``scale_out.py``); both runs' figures stand side by
side at the end of summary.txt. Runs with ``.venv-celery`` (the celery and amazon providers, moto); writes
everything under ``--artifacts``; exits 1 on any failed check.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from checks import Check, max_overlap, scan_for_secrets, write_summary
from deployment import Deployment, session_members
from rest import TERMINAL_RUN_STATES, AirflowApi, wait_for
from scale_out import (
    IDS_PER_CALL,
    RATE_LIMIT_CODE,
    IdsAsked,
    RowComparison,
    Throughput,
    compare_rows,
    expected_rows,
    ids_asked,
    throughput,
)
from services import ObjectStore, Redis
from stack import ADMIN_PASSWORD, ADMIN_USER, AirflowSettings, VendorSandbox, free_port, patsnap_connection
from worker_name import WORKER_NAME_ENV

from airflow_provider_patsnap.endpoints import ENDPOINTS
from airflow_provider_patsnap.sandbox import RequestRecord
from tests.postgres_cluster import PostgresCluster

REPO = Path(__file__).resolve().parents[2]
E2E_DAGS = Path(__file__).resolve().parent / "dags"
SHARED, POOLED, REPORT = "patsnap_scale_shared", "patsnap_scale_pool", "patsnap_scale_report"
WARMUP = "patsnap_scale_warmup"
SHARD_TASK = "legal_information"
LEGAL = ENDPOINTS["P026"]
SHARDS = 16

# The vendor as the sandbox plays it: QPS 20 judged at arrival with a burst of 5, calls of 1 to 2 s.
VENDOR_QPS = 20.0
# The connections' qps: the QPS PatSnap granted, as docs/performance.md says to set it.
CLIENT_QPS = VENDOR_QPS
VENDOR_BURST = 5.0
LATENCY, LATENCY_JITTER = 1.0, 1.0
REPORT_DELAY = 6.0
STEADY_TARGET = 0.95  # of QPS x 100 patents a second
STEADY_SECONDS = 60.0  # the shortest steady window the portfolio must give at the limit

POOL = "patsnap_api"
WORKERS = {"worker-1": "127.0.0.2", "worker-2": "127.0.0.3"}
# 16 shards at once, and the report's one task at a time beside them: 9 slots on each worker.
WORKER_CONCURRENCY = 9
BUCKET, REPORT_PREFIX = "patsnap-reports", "value-reports/"
WAREHOUSE_DB = "warehouse"
TABLES = {SHARED: "legal_shared", POOLED: "legal_pool"}
RUN_TIMEOUT = 420.0
# The sandbox stands in for PatSnap, whose servers do not share the workers' CPUs. On this one machine its
# threads run ahead of the deployment's processes, so that an arrival stamp is when a call arrived, not
# when the sandbox next got a CPU (calls stamped late come out bunched, and bunched calls are refused).
SANDBOX_NICENESS = -10


@dataclass(frozen=True)
class Worker:
    name: str
    address: str  # its hostname in task instances, and where its log server listens
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "airflow-home"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"


@dataclass
class RunResult:
    label: str
    dag_id: str
    run_id: str
    state: str
    shards: list[dict[str, Any]]
    records: list[RequestRecord]
    wall_seconds: float  # the DAG run's start to its end, as Airflow recorded them
    throughput: Throughput
    ids: IdsAsked | None = None
    rows: RowComparison | None = None

    @property
    def shard_span(self) -> float:
        starts = [moment(ti["start_date"]) for ti in self.shards if ti.get("start_date")]
        ends = [moment(ti["end_date"]) for ti in self.shards if ti.get("end_date")]
        return (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0


class CeleryScaleOut:
    def __init__(self, artifacts: Path, pool_slots: int, patents: int) -> None:
        self.artifacts = artifacts
        self.pool_slots = pool_slots
        self.patents = patents
        self.logs = artifacts / "logs"
        self.home = artifacts / "control-plane" / "airflow-home"
        self.workers = [Worker(name, address, artifacts / name) for name, address in WORKERS.items()]
        for directory in (self.logs, artifacts / "pages", self.home):
            directory.mkdir(parents=True, exist_ok=True)
        for worker in self.workers:
            worker.home.mkdir(parents=True, exist_ok=True)
            worker.tmp.mkdir(parents=True, exist_ok=True)
        self.settings = AirflowSettings(REPO, self.home, Path(sys.executable).parent, dags_folder=E2E_DAGS)
        self.sandbox = VendorSandbox(
            qps=VENDOR_QPS,
            burst=VENDOR_BURST,
            latency=LATENCY,
            latency_jitter=LATENCY_JITTER,
            report_delay=REPORT_DELAY,
        )
        self.postgres = PostgresCluster()
        self.redis: Redis | None = None
        self.store: ObjectStore | None = None
        self.deployment: Deployment | None = None
        self.log_port = free_port()
        self.api = AirflowApi(self.settings.base_url, ADMIN_USER, ADMIN_PASSWORD, artifacts / "pages")
        self.checks: list[Check] = []
        self.timings: dict[str, float] = {}
        self.observations: dict[str, str] = {}
        self.results: dict[str, RunResult] = {}
        self.portfolio: list[str] = []
        self.other_tis: list[dict[str, Any]] = []  # the warm-up's task instances (for the logs check)
        self.expected: dict[str, int] | None = None  # the sandbox's rows for the portfolio, made once
        self.started = time.monotonic()

    # ------------------------------------------------------------------------------------- reporting

    def step(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.timings[text] = round(elapsed, 1)
        print(f"== [{elapsed:6.1f}s] {text}", flush=True)

    def record(self, name: str, ok: bool, detail: str, **data: Any) -> None:
        self.checks.append(Check(name, ok, detail, data))
        print(f"   {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    # ------------------------------------------------------------------------------------- bring-up

    def env(self) -> dict[str, str]:
        """Every component's settings; each worker overrides its home, temp dir and name."""
        assert self.redis is not None
        database = self.postgres.sqlalchemy_url
        return {
            **self.settings.env(metadata_db=database),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "32",
            "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            # None reserved ahead: a busy worker leaves the next task to the other one.
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            # The key that signs log requests: the same on every component, as across machines (each
            # AIRFLOW_HOME would otherwise generate its own in its airflow.cfg, and log fetches get 403).
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_port),
            "E2E_POOL_SLOTS": str(self.pool_slots),
            "E2E_CLIENT_QPS": str(CLIENT_QPS),
            "E2E_WORKER_SLOTS": str(WORKER_CONCURRENCY * len(self.workers)),
            "E2E_REPORT_TARGET": f"s3://e2e_s3@{BUCKET}/{REPORT_PREFIX}",
        }

    def worker_env(self, worker: Worker) -> dict[str, str]:
        passwords = worker.home / "passwords.json"
        shutil.copyfile(self.home / "passwords.json", passwords)
        return {
            "AIRFLOW_HOME": str(worker.home),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(worker.logs),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "TMPDIR": str(worker.tmp),
            WORKER_NAME_ENV: worker.address,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.e2e.worker_name.hostname",
        }

    def bring_up(self) -> None:
        self.step("PostgreSQL, Redis, the object store (moto's S3) and the sandbox")
        self.postgres.start()
        self.redis = Redis(self.logs / "redis.log")
        self.store = ObjectStore(
            Path(sys.executable).parent,
            self.logs / "object-store.log",
            access_key="e2e-access-key",
            secret_key="e2e-s3-secret-" + secrets.token_hex(12),
        )
        with thread_niceness(SANDBOX_NICENESS):  # the sandbox's threads, and the ones they start
            self.sandbox.start()
        wait_for("Redis to accept connections", self.redis.ready, timeout=30, interval=0.2)
        wait_for("the object store to answer", self.store.ready, timeout=60, interval=0.3)
        self.store.client().create_bucket(Bucket=BUCKET)
        env = self.env()
        migrate = self.settings_run(["db", "migrate"], env)
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed: {migrate.stderr[-2000:]}")
        self.step(
            "api-server, scheduler, dag-processor; two celery workers with their own homes and log servers"
        )
        self.deployment = Deployment(self.settings.airflow_bin, env, self.logs)
        for command in ("api-server", "scheduler", "dag-processor"):
            self.deployment.start(command, command)
        for worker in self.workers:
            worker_env = self.worker_env(worker)
            self.deployment.start(
                f"celery worker --celery-hostname {worker.name}@%h --concurrency {WORKER_CONCURRENCY} "
                "--skip-serve-logs",
                worker.name,
                env=worker_env,
            )
            self.deployment.start_program(
                [
                    sys.executable,
                    str(Path(__file__).with_name("worker_logs.py")),
                    "--host",
                    worker.address,
                    "--port",
                    str(self.log_port),
                ],
                f"{worker.name}-log-server",
                env=worker_env,
            )
        wait_for("the API server's health", self.api.healthy, timeout=180)
        wait_for(
            "the scale-out DAGs to be parsed",
            lambda: {SHARED, POOLED, REPORT, WARMUP} <= self.api.dag_ids(),
            timeout=240,
            interval=2,
        )
        wait_for("both celery workers", self.workers_ready, timeout=120, interval=1)
        wait_for("both workers' log servers", self.log_servers_ready, timeout=60, interval=0.5)
        self.observations["deployment"] = (
            f"CeleryExecutor; PostgreSQL on 127.0.0.1:{self.postgres.port} (metadata DB, result backend, "
            f"database {WAREHOUSE_DB}); Redis on 127.0.0.1:{self.redis.port} (broker, shared limit); S3 "
            f"(moto) at {self.store.endpoint_url}; workers "
            + ", ".join(f"{w.name} at {w.address} (concurrency {WORKER_CONCURRENCY})" for w in self.workers)
            + f"; sandbox QPS {VENDOR_QPS:g}, burst {VENDOR_BURST:g}, calls of {LATENCY:g}-"
            f"{LATENCY + LATENCY_JITTER:g} s; the connections' qps {CLIENT_QPS:g}"
        )

    def settings_run(self, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.settings.airflow_bin, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        name = "cli-" + "-".join(args) + ".log"
        (self.logs / name).write_text(result.stdout + result.stderr, encoding="utf-8")
        return result

    def workers_ready(self) -> bool:
        logs = [(self.logs / f"{w.name}.log").read_text(errors="replace") for w in self.workers]
        return all(" ready." in text for text in logs)

    def log_servers_ready(self) -> bool:
        for worker in self.workers:
            try:
                urllib.request.urlopen(f"http://{worker.address}:{self.log_port}/log/", timeout=2)
            except urllib.error.HTTPError:
                continue  # it answers (403 without a token): it is up
            except OSError:
                return False
        return True

    def configure(self) -> None:
        self.step("the warehouse's portfolio; connections and the pool through the REST API")
        assert self.redis is not None and self.store is not None
        self.load_portfolio()
        hook_meta = self.api.hook_meta("patsnap")
        shared = patsnap_connection(hook_meta, "patsnap_shared", self.sandbox)
        shared["extra"] = json.dumps(
            {**json.loads(shared["extra"]), "qps": CLIENT_QPS, "rate_limit_redis_conn_id": "patsnap_redis"}
        )
        pooled = patsnap_connection(hook_meta, "patsnap_pool", self.sandbox)
        pooled["extra"] = json.dumps({**json.loads(pooled["extra"]), "qps": CLIENT_QPS})
        for connection in (
            shared,
            pooled,
            self.redis.connection("patsnap_redis"),
            self.store.connection("e2e_s3"),
            {
                "connection_id": "patsnap_warehouse",
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": self.postgres.port,
                "login": "postgres",
                "schema": WAREHOUSE_DB,
            },
        ):
            self.api.create_connection(connection)
        share = CLIENT_QPS / self.pool_slots
        self.api.create_pool(
            POOL,
            self.pool_slots,
            f"PatSnap API: {self.pool_slots} slots x {share:g} qps = qps {CLIENT_QPS:g}",
        )

    def warehouse(self) -> Any:
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.postgres.port, user="postgres", dbname=WAREHOUSE_DB
        )

    def load_portfolio(self) -> None:
        """``portfolio``: ``self.patents`` distinct patent numbers of four countries, made in the database."""
        import psycopg2

        admin = psycopg2.connect(
            host="127.0.0.1", port=self.postgres.port, user="postgres", dbname="postgres"
        )
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {WAREHOUSE_DB}")
        admin.close()
        with self.warehouse() as db, db.cursor() as cursor:
            cursor.execute("CREATE TABLE portfolio (patent_number TEXT PRIMARY KEY)")
            cursor.execute(
                "INSERT INTO portfolio SELECT (ARRAY['CN', 'US', 'EP', 'JP'])[1 + g %% 4] || (100000000 + g)::text "
                "|| (ARRAY['A', 'B1'])[1 + g / 4 %% 2] FROM generate_series(0, %s - 1) AS g",
                (self.patents,),
            )
            cursor.execute("SELECT patent_number FROM portfolio")
            self.portfolio = [pn for (pn,) in cursor.fetchall()]
        self.observations["portfolio"] = (
            f"{len(self.portfolio)} patent numbers in {WAREHOUSE_DB}.portfolio, read by SqlIds in {SHARDS} "
            f"hash shards; at the limit ({VENDOR_QPS * IDS_PER_CALL:.0f} patents/s) a run takes "
            f"{len(self.portfolio) / (VENDOR_QPS * IDS_PER_CALL):.0f} s"
        )

    # ------------------------------------------------------------------------------------- the runs

    def finished(self, run_ids: dict[str, str]) -> dict[str, str] | None:
        """Each DAG's run state once every one of the runs has ended, else None."""
        states = {dag: self.api.run_state(dag, run_id) for dag, run_id in run_ids.items()}
        return states if all(state in TERMINAL_RUN_STATES for state in states.values()) else None

    def warm_up(self) -> None:
        """One task in every worker slot, so that neither measured run pays for cold worker processes."""
        self.api.unpause(WARMUP)
        run_id = self.api.trigger(WARMUP)
        states = wait_for(
            f"{WARMUP} to finish", lambda: self.finished({WARMUP: run_id}), timeout=RUN_TIMEOUT, interval=1
        )
        state = states[WARMUP]
        tis = self.api.task_instances(WARMUP, run_id)
        self.other_tis += tis
        self.record(
            "both workers took tasks",
            state == "success" and all(self.per_worker(tis).values()),
            f"{WARMUP} {state}: {len(tis)} tasks, per worker {self.per_worker(tis)}",
        )

    def run(self, label: str, dag_id: str, beside: tuple[str, ...] = ()) -> tuple[RunResult, dict[str, str]]:
        """Trigger ``dag_id`` (and the DAGs ``beside`` it at the same moment); wait for all of them."""
        assert self.sandbox.app is not None
        ledger = self.sandbox.app.ledger
        since = len(ledger.records())
        for dag in (dag_id, *beside):
            self.api.unpause(dag)
        run_ids = {dag: self.api.trigger(dag) for dag in (dag_id, *beside)}

        states = wait_for(
            f"{', '.join(run_ids)} to finish", lambda: self.finished(run_ids), timeout=RUN_TIMEOUT, interval=2
        )
        run = self.api.dag_run(dag_id, run_ids[dag_id])
        records = ledger.since(since)
        result = RunResult(
            label=label,
            dag_id=dag_id,
            run_id=run_ids[dag_id],
            state=states[dag_id],
            shards=[
                ti for ti in self.api.task_instances(dag_id, run_ids[dag_id]) if ti["task_id"] == SHARD_TASK
            ],
            records=records,
            wall_seconds=(moment(run["end_date"]) - moment(run["start_date"])).total_seconds(),
            throughput=throughput(records, LEGAL.path),
        )
        self.results[dag_id] = result
        write_arrivals(self.artifacts / f"arrivals-{label}.csv", records)
        ok = [ti for ti in result.shards if ti.get("state") == "success"]
        self.record(
            f"{dag_id} run",
            result.state == "success" and len(ok) == SHARDS,
            f"{result.state}; {len(ok)}/{SHARDS} shards succeeded; {result.wall_seconds:.1f} s from the run's "
            f"start to its end",
        )
        return result, {dag: run_ids[dag] for dag in beside}

    def check_vendor(self, result: RunResult) -> None:
        """Ids asked once each, and the warehouse's rows against the sandbox's data."""
        result.ids = ids_asked(result.records, LEGAL.path, self.portfolio)
        ids = result.ids
        self.record(
            f"{result.dag_id}: every id asked for exactly once",
            ids.exactly_once and ids.distinct == len(self.portfolio),
            f"{ids.asked} ids in answered calls, {ids.distinct} distinct, of {len(self.portfolio)}; missing "
            f"{ids.missing}, unexpected {ids.unexpected}, in more than one call {ids.repeated}",
        )
        if self.expected is None:
            self.expected = expected_rows(LEGAL, self.portfolio)
        table = TABLES[result.dag_id]
        names = [name for name in LEGAL.column_names if name != "fetched_at"]
        with self.warehouse() as db, db.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(names)} FROM {table}")
            result.rows = compare_rows(table, cursor.fetchall(), self.expected)
        self.record(
            f"{result.dag_id}: every row exactly once, equal to the sandbox's data",
            result.rows.exact,
            result.rows.describe(),
        )

    def check_shared(self, result: RunResult) -> None:
        figures = result.throughput
        hosts = self.per_worker(result.shards)
        self.record(
            "shards ran on both workers",
            all(hosts.values()),
            f"shards per worker {hosts}",
        )
        overlap = max_overlap(result.shards)
        self.record(
            f"all {SHARDS} shards at the vendor at once",
            overlap == SHARDS,
            f"at most {overlap} shards running at the same moment; no pool",
        )
        self.record(
            f"steady throughput >= {STEADY_TARGET} of the limit through the shared limiter",
            figures.ratio(VENDOR_QPS) >= STEADY_TARGET and figures.steady_seconds >= STEADY_SECONDS,
            figures.describe(VENDOR_QPS) + f"; the window must last >= {STEADY_SECONDS:.0f} s",
        )
        self.record(
            f"no {RATE_LIMIT_CODE} answer through the shared limiter",
            figures.refused == 0 and not figures.other_errors,
            f"{figures.refused} answers {RATE_LIMIT_CODE} of {len(result.records)} requests (the report's "
            f"included); other errors {figures.other_errors or 'none'}",
        )
        self.check_vendor(result)

    def check_pooled(self, result: RunResult) -> None:
        overlap = max_overlap(result.shards)
        self.record(
            "pool held",
            overlap <= self.pool_slots,
            f"at most {overlap} shards at once; pool slots {self.pool_slots}",
        )
        self.check_vendor(result)
        figures = result.throughput
        self.observations["pool arithmetic"] = (
            f"{self.pool_slots} slots x {CLIENT_QPS / self.pool_slots:g} qps: {figures.describe(VENDOR_QPS)}; "
            f"{figures.refused} answers {RATE_LIMIT_CODE}"
        )

    def check_report(self, run_id: str) -> None:
        assert self.store is not None and self.sandbox.app is not None
        state = self.api.run_state(REPORT, run_id)
        stats = self.sandbox.app.stats()
        objects = self.store.objects(BUCKET, REPORT_PREFIX)
        files = {key: size for key, size in objects.items() if not key.endswith(".part")}
        returned = str(self.api.xcom(REPORT, run_id, "download_report"))
        hosts = {ti["task_id"]: self.worker_name(ti) for ti in self.api.task_instances(REPORT, run_id)}
        self.record(
            "report created once, written to the object store, not empty",
            state == "success"
            and stats["reports_created"] == 1
            and len(files) == 1
            and all(size > 0 for size in files.values())
            and all(key.rsplit("/", 1)[-1] in returned for key in files),
            f"{REPORT} {state}; reports created {stats['reports_created']}; s3://{BUCKET}/{REPORT_PREFIX}: "
            f"{files} (leftover parts: {len(objects) - len(files)}); download_report returned {returned}; "
            f"tasks ran on {hosts}",
        )

    # ------------------------------------------------------------------------------------- workers

    def worker_name(self, ti: dict[str, Any]) -> str:
        return next(
            (w.name for w in self.workers if w.address == ti.get("hostname")), str(ti.get("hostname"))
        )

    def per_worker(self, tis: list[dict[str, Any]]) -> dict[str, int]:
        return {w.name: sum(ti.get("hostname") == w.address for ti in tis) for w in self.workers}

    def check_logs(self, report_run: str | None) -> None:
        """Each task's log stays with its worker; the API server reads it from that worker's log server."""
        self.step("task logs: where they are written, and how the API server reads them")
        tis = [ti for result in self.results.values() for ti in result.shards] + self.other_tis
        if report_run:
            tis += self.api.task_instances(REPORT, report_run)
        on_disk = {w.name: log_files(w.logs) for w in self.workers}
        ran = {
            w.name: {
                (ti["dag_id"], ti["dag_run_id"], ti["task_id"], ti["map_index"])
                for ti in tis
                if ti.get("hostname") == w.address
            }
            for w in self.workers
        }
        control_plane = log_files(self.home / "logs")
        self.record(
            "each worker's log folder holds the logs of the tasks it ran, and only those",
            all(on_disk[name] == ran[name] and ran[name] for name in ran) and not control_plane,
            "; ".join(
                f"{name}: {len(on_disk[name])} task logs on its disk, ran {len(ran[name])}" for name in ran
            )
            + f"; task logs in the control plane's home: {len(control_plane)}",
        )
        shared = self.results.get(SHARED)
        fetched: dict[str, str] = {}
        served: list[bool] = []
        for worker in self.workers:
            ti = (
                next((t for t in shared.shards if t.get("hostname") == worker.address), None)
                if shared
                else None
            )
            if ti is None:
                fetched[worker.name] = "no shard ran there"
                served.append(False)
                continue
            answer = self.api.task_log(
                SHARED, ti["dag_run_id"], SHARD_TASK, int(ti["try_number"]), ti["map_index"]
            )
            text = json.dumps(answer)
            url = f"http://{worker.address}:{self.log_port}/log/"
            from_server, has_summary = url in text, "Legal information: summary" in text
            served.append(from_server and has_summary)
            fetched[worker.name] = (
                f"shard {ti['map_index']}: {len(answer.get('content') or [])} entries, read from {url}: "
                f"{from_server}, the task's summary in it: {has_summary}"
            )
        self.record(
            "the API server reads each task's log from its worker's log server",
            all(served),
            "; ".join(f"{name} {detail}" for name, detail in fetched.items()),
        )

    # ------------------------------------------------------------------------------------- wrap-up

    def check_secrets(self) -> None:
        self.step("scanning every log for secrets")
        needles = {
            "client secret": [self.sandbox.client_secret],
            "OAuth token": self.sandbox.issued_tokens(),
            "object store secret key": [self.store.secret_key] if self.store else [],
        }
        roots = [self.logs, self.home / "logs", self.artifacts / "pages", *(w.home for w in self.workers)]
        scanned, hits = scan_for_secrets([root for root in roots if root.exists()], needles)
        self.record(
            "no secret in any log or page",
            scanned > 0 and not hits and bool(needles["OAuth token"]),
            f"{scanned} files scanned; hits: {[(hit.path, hit.secret) for hit in hits]}",
        )

    def stop(self) -> None:
        self.step("stopping every component, Redis, the object store and PostgreSQL by PID")
        stubborn: dict[str, list[int]] = {}
        left: list[int] = []
        if self.deployment is not None:
            stubborn = self.deployment.stop_all()
            left = self.deployment.leftovers()
        clean = True
        for service in (self.redis, self.store):
            if service is not None:
                clean = service.stop() and clean
                left += session_members(service.process.pid)
        self.sandbox.stop()
        self.postgres.stop()
        self.record(
            "everything stopped on SIGINT, nothing left",
            not stubborn and not left and clean,
            f"needed SIGKILL: {stubborn}; Redis and the object store ended on SIGINT: {clean}; still running: {left}",
        )

    def side_by_side(self) -> str:
        """Both runs' figures in one table (summary.txt's last block)."""
        shared, pooled = self.results.get(SHARED), self.results.get(POOLED)
        limit = VENDOR_QPS * IDS_PER_CALL
        columns = [
            ("shared limiter (Redis), no pool", shared),
            (f"pool {self.pool_slots} slots x {CLIENT_QPS / self.pool_slots:g} qps", pooled),
        ]

        def cell(result: RunResult | None, what: str) -> str:
            if result is None:
                return "not run"
            figures = result.throughput
            if what == "steady":
                return f"{figures.steady_rate:.0f}/s = {figures.ratio(VENDOR_QPS):.3f}"
            if what == "window":
                return f"{figures.steady_seconds:.1f} s"
            if what == "overall":
                return f"{figures.patents / figures.seconds:.0f}/s" if figures.seconds else "-"
            if what == "refused":
                return f"{figures.refused} of {len(result.records)} requests"
            if what == "busiest":
                return str(figures.busiest_second)
            if what == "overlap":
                return str(max_overlap(result.shards))
            if what == "rows":
                rows = result.rows
                return f"{rows.found}/{rows.expected}, {rows.differing} differing" if rows else "-"
            if what == "span":
                return f"{result.shard_span:.1f} s"
            return f"{result.wall_seconds:.1f} s"

        rows = [
            (f"steady throughput, patents/s (limit {limit:.0f})", "steady"),
            ("steady window (10 %-90 % of patents)", "window"),
            ("first to last answered call, patents/s", "overall"),
            (f"answers {RATE_LIMIT_CODE}", "refused"),
            ("most data calls arriving in one second", "busiest"),
            ("most shards running at once", "overlap"),
            ("rows landed / expected", "rows"),
            ("first shard's start to last shard's end", "span"),
            ("wall time, DAG run start to end", "wall"),
        ]
        width = max(len(label) for label, _ in rows)
        widths = [
            max(len(title), *(len(cell(result, what)) for _, what in rows)) for title, result in columns
        ]
        lines = [
            f"{SHARDS} shards of {len(self.portfolio)} patents, sandbox QPS {VENDOR_QPS:g}:",
            "  ".join(
                [" " * width, *(title.ljust(w) for (title, _), w in zip(columns, widths, strict=True))]
            ),
        ]
        for label, what in rows:
            cells = [cell(result, what).ljust(w) for (_, result), w in zip(columns, widths, strict=True)]
            lines.append("  ".join([label.ljust(width), *cells]).rstrip())
        return "\n".join(lines)

    def summary(self) -> int:
        elapsed = time.monotonic() - self.started
        return write_summary(
            self.artifacts,
            self.checks,
            self.observations,
            self.timings,
            elapsed,
            sections=[self.side_by_side()],
        )


_LOG_PATH = re.compile(
    r"dag_id=(?P<dag>[^/]+)/run_id=(?P<run>[^/]+)/task_id=(?P<task>[^/]+)/(?:map_index=(?P<index>-?\d+)/)?attempt=\d+\.log$"
)


def log_files(root: Path) -> set[tuple[str, str, str, int]]:
    """(dag id, run id, task id, map index) of every task log file under ``root``."""
    found = set()
    for path in root.rglob("attempt=*.log") if root.exists() else ():
        match = _LOG_PATH.search(path.relative_to(root).as_posix())
        if match:
            index = match["index"]
            found.add((match["dag"], match["run"], match["task"], int(index) if index is not None else -1))
    return found


@contextmanager
def thread_niceness(niceness: int) -> Iterator[None]:
    """Run the block, and every thread it starts, at ``niceness`` (Linux keeps one per thread; threads
    inherit their creator's); the calling thread is set back after it. Without the privilege to raise a
    priority, the block runs as it is."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except PermissionError:
        yield
        return
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)


def write_arrivals(path: Path, records: list[RequestRecord]) -> None:
    """The run's requests as the sandbox saw them, by arrival (for a closer look at the figures)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["arrival_s", "wall", "path", "ids", "http_status", "error_code"])
        start = min((record.arrival for record in records), default=0.0)
        for record in sorted(records, key=lambda record: record.arrival):
            out.writerow(
                [
                    f"{record.arrival - start:.6f}",
                    f"{record.wall:.6f}",
                    record.path,
                    len(record.ids),
                    record.http_status,
                    record.error_code,
                ]
            )


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--pool-slots", type=int, default=SHARDS, help="the pool run's slots (qps 20/N each)")
    parser.add_argument("--patents", type=int, default=160_000, help="the portfolio's size")
    args = parser.parse_args()
    run = CeleryScaleOut(args.artifacts.resolve(), args.pool_slots, args.patents)
    # SIGTERM (the budget's timeout, CI cancelling) takes the same way out as an error.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report_run: str | None = None
    try:
        run.bring_up()
        run.configure()
        run.step(f"{WARMUP}: a task in each of the {2 * WORKER_CONCURRENCY} worker slots")
        run.warm_up()
        run.step(f"{SHARED}: {SHARDS} shards through the shared limiter, and {REPORT} beside it")
        shared, beside = run.run("shared", SHARED, beside=(REPORT,))
        report_run = beside[REPORT]
        run.step(f"checking {SHARED} and the report")
        run.check_shared(shared)
        run.check_report(report_run)
        run.step(
            f"{POOLED}: the same shards in a pool of {args.pool_slots} at {CLIENT_QPS / args.pool_slots:g} qps each"
        )
        pooled, _ = run.run("pool", POOLED)
        run.step(f"checking {POOLED}")
        run.check_pooled(pooled)
        run.check_logs(report_run)
    except Exception as error:  # every failure still stops what was started and writes the summary
        traceback.print_exc()
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
