"""``make e2e``: a real Airflow 3 deployment on loopback, checked end to end (see scripts/e2e/run.sh).

Runs with the project's Airflow venv interpreter; the browser part runs in the tools venv that holds
selenium (``--browser-python``). Writes everything under ``--artifacts`` and exits 1 on any failed check.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

from checks import (
    Check,
    max_overlap,
    patent_list,
    rows_exactly_once,
    scan_for_secrets,
    trigger_log_files,
    warehouse_tables,
    write_summary,
)
from connection_checks import PORT_CONN_ID, ConnectionChecks
from deployment import Deployment
from incremental import FOLLOWER, SYNC, describe_events, follower_run, sync_rows, table_uri
from rest import TERMINAL_RUN_STATES, AirflowApi, wait_for
from stack import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    DAGS_FOLDER,
    VENDOR_QPS,
    AirflowSettings,
    VendorSandbox,
    patsnap_connection,
)

from airflow_provider_patsnap.report import CREATE_PATH as CREATE_REPORT_PATH
from tests.postgres_cluster import PostgresCluster

REPO = Path(__file__).resolve().parents[2]
ENRICHMENT, SHARDED, REPORT = "patsnap_enrichment", "patsnap_sharded_enrichment", "patsnap_value_report"
EXAMPLE_DAGS = {ENRICHMENT, SHARDED, REPORT, SYNC, FOLLOWER}  # every DAG the package ships
DAILY = (ENRICHMENT, SYNC)  # scheduled @daily, catchup=False
POOL, POOL_SLOTS = "patsnap_api", 2
RATE_LIMIT_CODE = "67200002"


class EndToEnd(ConnectionChecks):
    def __init__(self, artifacts: Path, browser_python: str | None) -> None:
        self.artifacts = artifacts
        self.browser_python = browser_python
        self.logs = artifacts / "logs"
        self.pages = artifacts / "pages"
        self.home = artifacts / "airflow-home"
        self.screenshots = artifacts / "screenshots"
        for directory in (self.logs, self.pages, self.home, self.screenshots):
            directory.mkdir(parents=True, exist_ok=True)
        self.settings = AirflowSettings(REPO, self.home, Path(sys.executable).parent)
        # PostgreSQL, as deployments have it: on a SQLite file the API server, scheduler and dag-processor
        # queue for one write lock, and under CI load a trigger failed with HTTP 500 "Database error".
        self.postgres = PostgresCluster().start()
        self.env = self.settings.env(metadata_db=self.postgres.sqlalchemy_url)
        self.sandbox = VendorSandbox()
        self.deployment = Deployment(self.settings.airflow_bin, self.env, self.logs)
        self.api = AirflowApi(self.settings.base_url, ADMIN_USER, ADMIN_PASSWORD, self.pages)
        self.checks: list[Check] = []
        self.timings: dict[str, float] = {}
        self.started = time.monotonic()
        self.rest_extra: dict[str, Any] = {}
        self.report_jobs: list[str] = []
        self.first_triggerer_jobs: set[str] = set()
        self.observations: dict[str, str] = {}

    # ------------------------------------------------------------------------------------- helpers

    def step(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.timings[text] = round(elapsed, 1)
        print(f"== [{elapsed:6.1f}s] {text}", flush=True)

    def record(self, name: str, ok: bool, detail: str, **data: Any) -> None:
        self.checks.append(Check(name, ok, detail, data))
        print(f"   {'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)

    def airflow(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
        log = self.logs / f"cli-{'-'.join(args[:2])}.log"
        result = subprocess.run(
            [self.settings.airflow_bin, *args],
            env={**self.env, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        with log.open("a", encoding="utf-8") as handle:
            handle.write(
                f"$ airflow {' '.join(args)}\n{result.stdout}{result.stderr}exit {result.returncode}\n"
            )
        return result

    def sandbox_admin(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.sandbox.base_url}/_sandbox/{path}", timeout=10) as answer:
            return json.load(answer)

    # ------------------------------------------------------------------------------------- phases

    def bring_up(self) -> None:
        self.step(f"sandbox (the vendor); airflow db migrate on PostgreSQL (127.0.0.1:{self.postgres.port})")
        self.sandbox.start()
        migrate = self.airflow("db", "migrate")
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed: {migrate.stderr[-2000:]}")
        # The dag-processor starts last, once the connections exist: no example DAG reads a connection when
        # it is parsed (emit_asset declares an alias: docs/lineage.md), but their runs need them.
        self.step("starting api-server, scheduler (LocalExecutor), triggerer")
        for command in ("api-server", "scheduler", "triggerer"):
            self.deployment.start(command, command)
        wait_for("the API server's health", self.api.healthy, timeout=120)
        self.step("connections and pool through the REST API, before any DAG file is parsed")
        hook_meta = self.api.hook_meta("patsnap")
        connection = patsnap_connection(hook_meta, "patsnap_default", self.sandbox)
        self.api.create_connection(connection)
        warehouse = self.home / "warehouse.db"
        self.api.create_connection(
            {"connection_id": "patsnap_warehouse", "conn_type": "sqlite", "host": str(warehouse)}
        )
        self.api.create_connection(
            {
                **connection,
                "connection_id": PORT_CONN_ID,
                "host": "http://127.0.0.1",
                "port": self.sandbox.port,
            }
        )
        self.api.create_pool(POOL, POOL_SLOTS, f"PatSnap API: {POOL_SLOTS} slots x 2.5 qps = vendor QPS 5")
        self.rest_extra = json.loads(connection["extra"])
        self.record(
            "connection qps from hook_meta = the vendor's QPS",
            self.rest_extra.get("qps") == VENDOR_QPS,
            f"extra {self.rest_extra}; vendor QPS {VENDOR_QPS}",
        )
        known_before = self.api.dag_ids()
        self.step("starting the dag-processor")
        self.deployment.start("dag-processor", "dag-processor")
        wait_for(
            "the example DAGs to be parsed (or an import error)",
            lambda: self.api.import_errors() or self.api.dag_ids() >= EXAMPLE_DAGS,
            timeout=180,
            interval=2,
        )
        errors = self.api.import_errors()
        parsed = self.api.dag_ids()
        self.record(
            "every example DAG parsed, no import error",
            not errors and parsed >= EXAMPLE_DAGS,
            f"DAGs before the dag-processor started: {sorted(known_before)}; parsed {sorted(parsed)}; "
            f"GET /api/v2/importErrors: {[(e.get('filename'), e.get('stack_trace', '')[-300:]) for e in errors]}",
        )

    def run_dags(self) -> dict[str, str]:
        self.step(
            f"unpausing the example DAGs; triggering {REPORT} and {SHARDED}; the scheduler starts "
            f"{' and '.join(DAILY)} on unpause, and {FOLLOWER} on the asset"
        )
        for dag_id in (REPORT, ENRICHMENT, SHARDED, FOLLOWER, SYNC):
            self.api.unpause(dag_id)
        runs = {
            REPORT: self.api.trigger(REPORT, {"report_dir": str(self.artifacts / "reports")}),
            SHARDED: self.api.trigger(SHARDED),
        }
        # A manual run of a @daily DAG would race the scheduled run that unpausing creates (catchup=False
        # still runs the latest interval): two syncs of one table, and the asset event from either.
        for dag_id in DAILY:
            runs[dag_id] = wait_for(
                f"the scheduler to start {dag_id}", partial(self.scheduled_run, dag_id), timeout=120
            )
        self.triggerer_restart(runs[REPORT])
        self.step("waiting for every run to finish")
        for dag_id, run_id in runs.items():
            state = self.wait_for_run(dag_id, run_id)
            states = {ti["task_id"]: ti["state"] for ti in self.api.task_instances(dag_id, run_id)}
            self.record(f"{dag_id} run", state == "success", f"{state}; tasks {states}")
        return runs

    def scheduled_run(self, dag_id: str) -> str | None:
        scheduled = [run["dag_run_id"] for run in self.api.dag_runs(dag_id) if run["run_type"] == "scheduled"]
        return str(scheduled[0]) if scheduled else None

    def wait_for_run(self, dag_id: str, run_id: str) -> str:
        def finished() -> str | None:
            state = self.api.run_state(dag_id, run_id)
            return state if state in TERMINAL_RUN_STATES else None

        return str(wait_for(f"{dag_id} to finish", finished, timeout=420, interval=3))

    def sensor_state(self, run_id: str) -> str:
        state = str(self.api.task_instance(REPORT, run_id, "wait_for_report")["state"])
        if state in ("success", "failed", "upstream_failed", "skipped"):
            raise RuntimeError(f"wait_for_report ended {state} before it deferred")
        return state

    def triggerer_restart(self, run_id: str) -> None:
        self.step("waiting for wait_for_report to defer")
        wait_for(
            "wait_for_report to be deferred", lambda: self.sensor_state(run_id) == "deferred", timeout=240
        )
        ti = self.api.task_instance(REPORT, run_id, "wait_for_report")
        trigger = ti.get("trigger") or {}
        first = next(c for c in self.deployment.components if c.name == "triggerer")
        logs_root = self.home / "logs"
        files = wait_for(
            "the trigger's log file from the first triggerer",
            lambda: trigger_log_files(logs_root, REPORT, "wait_for_report"),
            timeout=60,
        )
        first_jobs = set(files)
        self.record(
            "sensor deferred to the triggerer",
            ti["state"] == "deferred"
            and "PatsnapReportTrigger" in trigger.get("classpath", "")
            and bool(files),
            f"state {ti['state']}, trigger {trigger.get('classpath')}, trigger logs by triggerer job(s) "
            f"{sorted(first_jobs)}",
        )
        self.step(f"SIGKILL triggerer pid {first.pid} while the sensor is deferred; starting a new one")
        orphans = self.deployment.crash(first)
        stuck = self.deployment.stop_orphans(first.pid)
        self.deployment.start("triggerer", "triggerer-2")
        self.record(
            "killed triggerer's orphans stopped by PID",
            not stuck,
            f"orphans {orphans} after SIGKILL; still there after SIGINT: {stuck}",
        )
        self.first_triggerer_jobs = first_jobs

    def check_report(self, run_id: str) -> None:
        self.report_jobs.append(str(self.api.xcom(REPORT, run_id, "create_report")))
        files = trigger_log_files(self.home / "logs", REPORT, "wait_for_report")
        new_jobs = set(files) - self.first_triggerer_jobs
        requests = self.sandbox_admin("requests")
        creates = [r for r in requests if r["path"] == CREATE_REPORT_PATH and 200 <= r["http_status"] < 300]
        stats = self.sandbox_admin("stats")
        self.record(
            "a new triggerer finished the sensor",
            bool(new_jobs),
            f"trigger logs by triggerer jobs {sorted(files)}; after the kill: {sorted(new_jobs)}",
        )
        self.record(
            "exactly one paid report",
            len(creates) == 1 and stats["reports_created"] == 1,
            f"create calls answered 2xx: {len(creates)}; sandbox reports_created {stats['reports_created']}",
        )
        downloaded = sorted(p.name for p in (self.artifacts / "reports").glob("*"))
        self.record("report downloaded", bool(downloaded), f"files {downloaded}")

    def check_data(self, runs: dict[str, str]) -> None:
        self.step("checking the warehouse, the pool and the vendor's ledger")
        patents = patent_list(DAGS_FOLDER / "data" / "patents.csv")
        counts = warehouse_tables(self.home / "warehouse.db", patents)
        self.record(
            "warehouse rows exactly once",
            rows_exactly_once(counts),
            "; ".join(f"{c.table} {c.found}/{c.expected} (distinct {c.distinct})" for c in counts),
        )
        pooled = [
            ti
            for dag_id in (ENRICHMENT, SHARDED, SYNC)
            for ti in self.api.task_instances(dag_id, runs[dag_id])
            if ti.get("pool") == POOL
        ]
        shards = [ti for ti in pooled if ti["dag_id"] == SHARDED]
        self.record(
            "sharded DAG within its pool",
            len(shards) > 1 and max_overlap(shards) <= POOL_SLOTS,
            f"{len(shards)} mapped shards, at most {max_overlap(shards)} at once; pool slots {POOL_SLOTS}",
        )
        self.record(
            "every pooled task within the pool",
            max_overlap(pooled) <= POOL_SLOTS,
            f"{len(pooled)} tasks in {POOL}, at most {max_overlap(pooled)} at once",
        )
        stats = self.sandbox_admin("stats")
        ledger = {"stats": stats, "requests": self.sandbox_admin("requests")}
        (self.logs / "sandbox-ledger.json").write_text(json.dumps(ledger, indent=1), encoding="utf-8")
        rejections = stats["errors"].get(RATE_LIMIT_CODE, 0)
        self.record(
            "no rate-limit rejections",
            rejections == 0,
            f"{RATE_LIMIT_CODE} answers: {rejections}; business calls {stats['business_calls']}",
            stats=stats,
        )

    def check_incremental(self, sync_run: str) -> None:
        """The synced table's rows, and the asset-scheduled run the sync's asset event must start."""
        self.step(f"{SYNC}: its table, its asset event, and {FOLLOWER} started by the scheduler")
        warehouse = self.home / "warehouse.db"
        ok, detail = sync_rows(warehouse, patent_list(DAGS_FOLDER / "data" / "patents.csv"))
        self.record(f"{SYNC} rows exactly once", ok, detail)
        try:
            run, events = wait_for(
                f"an asset-triggered {FOLLOWER} run started by {SYNC} run {sync_run}",
                lambda: follower_run(self.api, sync_run),
                timeout=120,
                interval=2,
            )
        except TimeoutError as error:
            runs = [(r["dag_run_id"], r.get("run_type"), r["state"]) for r in self.api.dag_runs(FOLLOWER)]
            self.record(f"{FOLLOWER} started by the asset event", False, f"{error}; its runs: {runs}")
            return
        ours = [e for e in events if e.get("source_run_id") == sync_run]
        self.record(
            f"asset event from {SYNC}",
            all(
                e.get("uri") == table_uri(warehouse) and e.get("source_task_id") == "legal_events"
                for e in ours
            ),
            f"{len(events)} event(s) behind {FOLLOWER} run {run['dag_run_id']}: {describe_events(events)}",
        )
        state = self.wait_for_run(FOLLOWER, run["dag_run_id"])
        states = {ti["task_id"]: ti["state"] for ti in self.api.task_instances(FOLLOWER, run["dag_run_id"])}
        self.record(
            f"{FOLLOWER} started by the scheduler on the asset",
            state == "success",
            f"run {run['dag_run_id']} (run_type {run.get('run_type')}, triggered_by "
            f"{run.get('triggered_by')}): {state}; tasks {states}",
        )

    def check_secrets(self) -> None:
        self.step("scanning every log and fetched page for secrets")
        links = [self.sandbox.download_url(job_id) for job_id in self.report_jobs]
        needles = {
            "client secret": [self.sandbox.client_secret],
            "OAuth token": self.sandbox.issued_tokens(),
            "presigned URL": ["X-Amz-Signature=", *(link for link in links if link)],
        }
        scanned, hits = scan_for_secrets(
            [self.logs, self.pages, self.home / "logs", self.artifacts / "ui"], needles
        )
        self.record(
            "no secret in any log or page",
            scanned > 0 and not hits and bool(needles["OAuth token"]),
            f"{scanned} files scanned for 1 secret, {len(needles['OAuth token'])} tokens, presigned-link "
            f"markers; hits: {[(h.path, h.secret) for h in hits]}",
        )

    def stop(self) -> None:
        self.step("stopping every component by PID (SIGINT)")
        stubborn = self.deployment.stop_all()
        self.sandbox.stop()
        self.postgres.stop()
        left = self.deployment.leftovers()
        self.record(
            "everything stopped on SIGINT, nothing left",
            not stubborn and not left,
            f"needed SIGKILL: {stubborn}; still running: {left}",
        )

    def summary(self) -> int:
        elapsed = time.monotonic() - self.started
        where = {"screenshots": self.screenshots, "logs": self.logs}
        return write_summary(self.artifacts, self.checks, self.observations, self.timings, elapsed, where)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--browser-python", help="python of the venv that has selenium")
    args = parser.parse_args()
    run = EndToEnd(args.artifacts.resolve(), args.browser_python)
    # SIGTERM (CI cancelling the job) takes the same way out as an error: stop what we started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run.bring_up()
        runs = run.run_dags()
        run.check_report(runs[REPORT])
        run.check_data(runs)
        run.check_incremental(runs[SYNC])
        run.check_ui()
    except Exception as error:  # every failure still stops the deployment and writes the summary
        run.record("run", False, f"{type(error).__name__}: {error}")
    finally:
        try:
            run.check_secrets()
        except Exception as error:
            run.record("secrets scan", False, f"{type(error).__name__}: {error}")
        run.check_screenshots()
        run.stop()
    return run.summary()


if __name__ == "__main__":
    sys.exit(main())
