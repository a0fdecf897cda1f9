"""make smoke: proof that the provider works on one Airflow line (CI runs it on 3.0, 3.1 and 3.2).

Run with the line's own venv (``make smoke AIRFLOW=3.0`` makes ``.venv-af30`` and runs this); each step
prints its time, and the first failing step ends the run with exit 1:

    imports   every module of the package imports, and none of our code trips a deprecation warning
    provider  get_provider_info() against this Airflow's provider schema, the entry point, the CLI's view
    unit      pytest -m unit
    dags      `airflow dags test` of every DAG id the shipped example files define (read by this Airflow's
              DagBag) against the sandbox at the vendor's QPS, with a throwaway PostgreSQL for the
              PostgreSQL example and a file:// lake for the object storage one; the sandbox must answer
              no call with 67200002 (calling too fast)

    python scripts/smoke.py [--home DIR] [--step STEP ...]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import pkgutil
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.airflow_env import EXAMPLE_DAGS, REPO_ROOT, airflow_env  # stdlib only
from scripts.example_fixtures import LAKE_VARIABLE, seed_portfolio  # stdlib only

if TYPE_CHECKING:
    from airflow_provider_patsnap.sandbox import Sandbox

AIRFLOW_BIN = Path(sys.executable).parent / "airflow"
AIRFLOW_VERSION = importlib.metadata.version("apache-airflow")
AIRFLOW_LINE = ".".join(AIRFLOW_VERSION.split(".")[:2])
COMMAND_TIMEOUT = 300

# The example DAGs share the vendor's QPS through this pool: slots x per-task qps = QPS (as make demo).
POOL, POOL_SLOTS, VENDOR_QPS = "patsnap_api", 2, 5.0
REPORT_PATENT = "CN108977442B"
RATE_LIMIT_CODE = "67200002"

# The suite turns deprecation warnings into errors (pyproject's filterwarnings) to catch our own use of
# deprecated APIs. On Airflow 3.0 and 3.1 Airflow's own stack raises them too (common-compat importing a
# 3.0 shim, SQLAlchemy 2.1, universal-pathlib 0.2, anyio under Starlette 0.48), some inside code that
# swallows exceptions, so there they stay errors only when raised from our package or our tests.
OWN_DEPRECATIONS_ONLY = {"3.0", "3.1"}
# Module-name prefixes: test files import as their bare name (test_x; tests/unit has no __init__.py).
OWN_MODULES = ("airflow_provider_patsnap", "tests", "test_", "conftest", "scripts")
DEPRECATIONS = ("DeprecationWarning", "PendingDeprecationWarning", "FutureWarning")

# Airflow 3.0's `airflow dags test` logs, at debug level, each message the task runner sends, values
# included: the connection's password is in the "Sending request msg=MaskSecret(value=...)" lines that
# Airflow's own connection lookup causes before any provider code runs. Only lines holding all of these
# parts are let through, on that line only.
AIRFLOW_SECRET_ECHOES: dict[str, tuple[str, ...]] = {"3.0": ("Sending request", "msg=MaskSecret(value=")}

PROVIDER_TESTS = [
    f"tests/system/test_packaging.py::{name}"
    for name in (
        "test_provider_info_validates_against_airflow_schema",
        "test_provider_info_is_json_serialisable_and_names_the_distribution",
        "test_modules_named_in_provider_info_exist",
        "test_classes_named_in_provider_info_import",
        "test_entry_point_resolves_to_get_provider_info",
        "test_airflow_providers_list_shows_provider_without_errors",
        "test_airflow_registers_connection_type",
    )
]


class SmokeFailure(Exception):
    """A step found something wrong; the message says what."""


class ExampleRun(NamedTuple):
    dag_id: str
    tables: tuple[str, ...]  # warehouse tables that must have rows afterwards
    conf: dict[str, str]
    shows: str = ""  # a regex the output must match (the report's sensor deferring to its trigger)
    # Its outlet Asset must be known to the metadata DB first: `dags test` on Airflow 3.0 refuses an
    # asset no DAG parse has registered (AirflowInactiveAssetInInletOrOutletException).
    reserialize: bool = False
    warehouse: str = ""  # the warehouse of another run to read (default: a warehouse of its own)
    seed_portfolio: bool = False  # its warehouse needs the portfolio table its query reads
    postgres_tables: tuple[str, ...] = ()  # tables of the PostgreSQL warehouse that must have rows
    lake_files: tuple[str, ...] = ()  # globs under the lake (PATSNAP_LAKE) that must match files with rows


# ----------------------------------------------------------------------------------------------- steps


def check_imports(home: Path) -> str:
    """Import every module (example DAGs excepted: the dags step parses them) and record warnings."""
    package_dir = REPO_ROOT / "airflow_provider_patsnap"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        package = importlib.import_module("airflow_provider_patsnap")
        names = [
            info.name
            for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
            if ".example_dags" not in info.name and not info.name.endswith(".__main__")
        ]
        failed = []
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as exc:  # report every module that fails, not just the first
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
    if failed:
        raise SmokeFailure("modules that do not import:\n  " + "\n  ".join(failed))
    deprecation = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
    ours = [
        f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}"
        for w in caught
        if issubclass(w.category, deprecation) and Path(w.filename).resolve().is_relative_to(package_dir)
    ]
    if ours:
        raise SmokeFailure("our code uses APIs this Airflow deprecates:\n  " + "\n  ".join(ours))
    return f"{len(names)} modules"


def check_provider_info(home: Path) -> str:
    return run_pytest(home / "provider", PROVIDER_TESTS)


def run_unit_tier(home: Path) -> str:
    return run_pytest(home / "unit", ["-m", "unit"])


def run_example_dags(home: Path) -> str:
    from airflow_provider_patsnap.endpoints import ENDPOINTS
    from airflow_provider_patsnap.sandbox import Sandbox, SandboxConfig

    examples = [  # in the order they run: the report DAG after the sync whose table it reads
        ExampleRun("patsnap_enrichment", tuple(e.default_table for e in ENDPOINTS.values()), {}),
        ExampleRun("patsnap_sharded_enrichment", ("patsnap_legal_information",), {}),
        ExampleRun("patsnap_incremental_sync", ("patsnap_legal_daily",), {}, reserialize=True),
        ExampleRun(
            "patsnap_incremental_report",
            ("patsnap_legal_daily",),
            {},
            warehouse="patsnap_incremental_sync",
        ),
        ExampleRun(
            "patsnap_value_report",
            (),
            {"patent_number": REPORT_PATENT, "report_dir": (home / "dags" / "reports").as_uri()},
            shows=r"(?i)running trigger in ?line",
        ),
        ExampleRun("patsnap_warehouse_ids", ("patsnap_award",), {}, seed_portfolio=True),
        ExampleRun("patsnap_postgres_warehouse", (), {}, postgres_tables=("patsnap_legal_history",)),
        ExampleRun(
            "patsnap_object_storage", (), {}, lake_files=("seic_classification/*.jsonl", "award/*.jsonl")
        ),
        # Under its threshold, so the approval (which would wait for a person) is skipped.
        ExampleRun("patsnap_spend_gate", ("patsnap_legal_gated",), {}, shows=r"approve_above=1000"),
    ]
    shipped = example_dag_ids()
    planned = sorted(example.dag_id for example in examples)
    if sorted(shipped) != planned:
        raise SmokeFailure(
            f"the example files define DAGs {dict(sorted(shipped.items()))} (DagBag); this smoke runs {planned}"
        )

    # Report jobs never finish by themselves: the first status check must answer "not ready" so that the
    # sensor defers, then the jobs are finished (on that event, however slow the machine is).
    config = SandboxConfig(
        qps=VENDOR_QPS, client_id="smoke-client", client_secret="smoke-secret-value", report_delay=3600
    )
    from tests.postgres_cluster import PostgresCluster  # initdb + pg_ctl in a temp dir

    with Sandbox(config) as sandbox, PostgresCluster() as postgres:
        threading.Thread(target=finish_report_jobs_once_polled, args=(sandbox,), daemon=True).start()
        env = {
            **os.environ,
            **airflow_env(home / "dags"),
            "AIRFLOW_CONN_PATSNAP_DEFAULT": sandbox.connection_json(qps=VENDOR_QPS),
            "AIRFLOW_CONN_PATSNAP_POSTGRES": postgres.connection_json,
            LAKE_VARIABLE: (home / "dags" / "lake").as_uri() + "/",
            "PATSNAP_REPORT_POLL_SECONDS": "0.5",
        }
        airflow(["db", "migrate"], env, home / "dags" / "migrate.log")
        description = f"PatSnap API: {POOL_SLOTS} slots x per-task qps = vendor QPS {VENDOR_QPS:g}"
        airflow(["pools", "set", POOL, str(POOL_SLOTS), description], env, home / "dags" / "pool.log")
        results = [run_example(example, env, home / "dags", config.client_secret) for example in examples]
        stats = sandbox.stats()
    if stats["reports_created"] != 1:
        raise SmokeFailure(f"the report example created {stats['reports_created']} report jobs, not 1")
    rejected = stats["errors"].get(RATE_LIMIT_CODE, 0)
    calls = f"PatSnap calls {stats['business_calls']}, rate-limit answers ({RATE_LIMIT_CODE}) {rejected}"
    if rejected:
        # `dags test` runs the tasks one after another, each at VENDOR_QPS / POOL_SLOTS: none may be needed.
        raise SmokeFailure(f"the sandbox rate-limited the example DAGs: {calls}; " + "; ".join(results))
    return "; ".join(results) + f"; {calls}"


def example_dag_ids() -> dict[str, str]:
    """Every DAG the shipped example files define, as this Airflow's DagBag parses them: id -> file."""
    from airflow.models import DagBag

    # No connection is needed to parse them (emit_asset declares an alias: docs/lineage.md).
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    if bag.import_errors:
        raise SmokeFailure(f"the example DAG files do not import: {bag.import_errors}")
    return {dag_id: Path(dag.fileloc).name for dag_id, dag in bag.dags.items()}


def finish_report_jobs_once_polled(sandbox: Sandbox) -> None:
    from airflow_provider_patsnap.report import STATUS_PATH

    while not any(record.path == STATUS_PATH for record in sandbox.requests):
        time.sleep(0.05)  # waiting for an event (the first status request), not for time to pass
    sandbox.advance(sandbox.config.report_delay)


def run_example(example: ExampleRun, env: dict[str, str], home: Path, secret: str) -> str:
    warehouse = home / f"{example.warehouse or example.dag_id}.db"
    run_env = {
        **env,
        "AIRFLOW_CONN_PATSNAP_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
    }
    if example.reserialize:
        airflow(["dags", "reserialize"], run_env, home / f"{example.dag_id}.reserialize.log")
    if example.seed_portfolio:
        seed_portfolio(warehouse)
    command = ["dags", "test", example.dag_id, "2024-06-01"]
    if example.conf:
        command += ["-c", json.dumps(example.conf)]
    start = time.monotonic()
    output = airflow(command, run_env, home / f"{example.dag_id}.log")
    leaks = [line for line in output.splitlines() if secret in line and not airflow_echo(line)]
    if leaks:
        raise SmokeFailure(f"{example.dag_id}: the client secret is in {len(leaks)} lines of its output")
    if example.shows and not re.search(example.shows, output):
        raise SmokeFailure(f"{example.dag_id}: its output never matched {example.shows!r}")
    rows = {}
    with sqlite3.connect(warehouse) as db:
        for table in example.tables:
            rows[table] = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    rows.update(postgres_rows(env["AIRFLOW_CONN_PATSNAP_POSTGRES"], example.postgres_tables))
    rows.update(lake_rows(Path(env[LAKE_VARIABLE].removeprefix("file://")), example.lake_files))
    if not all(rows.values()):
        raise SmokeFailure(f"{example.dag_id}: empty warehouse tables or files: {rows}")
    landed = f"{sum(rows.values())} rows" if rows else ", ".join(report_files(example))
    return f"{example.dag_id} {time.monotonic() - start:.0f}s ({landed})"


def postgres_rows(connection_json: str, tables: tuple[str, ...]) -> dict[str, int]:
    if not tables:
        return {}
    import psycopg

    settings = json.loads(connection_json)
    with psycopg.connect(
        host=settings["host"], port=settings["port"], user=settings["login"], dbname=settings["schema"]
    ) as db:
        return {f"postgres:{t}": db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def lake_rows(lake: Path, patterns: tuple[str, ...]) -> dict[str, int]:
    """Lines of the newline-delimited JSON files each pattern matches under ``lake``."""
    return {
        f"lake:{pattern}": sum(len(path.read_bytes().splitlines()) for path in lake.glob(pattern))
        for pattern in patterns
    }


def airflow_echo(line: str) -> bool:
    parts = AIRFLOW_SECRET_ECHOES.get(AIRFLOW_LINE, ())
    return bool(parts) and all(part in line for part in parts)


def report_files(example: ExampleRun) -> list[str]:
    folder = Path(example.conf["report_dir"].removeprefix("file://"))
    files = [path for path in folder.glob("*") if path.stat().st_size > 0] if folder.is_dir() else []
    if not any(path.name.startswith(f"patent_value_report_{REPORT_PATENT}_") for path in files):
        raise SmokeFailure(f"{example.dag_id}: no report file in {folder}: {files}")
    return [path.name for path in files]


# ----------------------------------------------------------------------------------------------- running


def airflow(args: list[str], env: dict[str, str], log: Path) -> str:
    """Run the venv's ``airflow`` CLI; its output goes to ``log`` and is returned; exit != 0 fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [str(AIRFLOW_BIN), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    output = run.stdout + run.stderr
    log.write_text(output, encoding="utf-8")
    if run.returncode != 0:
        print(output[-6000:], file=sys.stderr)
        raise SmokeFailure(f"`airflow {' '.join(args[:3])}` exited {run.returncode} (log: {log})")
    return output


def run_pytest(home: Path, args: list[str]) -> str:
    filters: list[str] = []
    if AIRFLOW_LINE in OWN_DEPRECATIONS_ONLY:  # replaces the ini list; module is a prefix regex here
        own = [f"error::{category}:{module}" for category in DEPRECATIONS for module in OWN_MODULES]
        filters = ["-o", "filterwarnings=" + "\n".join(own)]
    env = {**os.environ, **airflow_env(home)}
    home.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", *filters, *args]
    status = subprocess.run(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, check=False).returncode
    if status == 5:
        raise SmokeFailure(f"pytest collected no tests: {' '.join(args)}")
    if status != 0:
        raise SmokeFailure(f"pytest exited {status}: {' '.join(args)}")
    return "pytest passed"


STEPS: dict[str, Callable[[Path], str]] = {
    "imports": check_imports,
    "provider": check_provider_info,
    "unit": run_unit_tier,
    "dags": run_example_dags,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=REPO_ROOT / ".airflow-home" / f"smoke-{AIRFLOW_LINE}")
    parser.add_argument("--step", action="append", choices=list(STEPS), help="run only these steps")
    args = parser.parse_args(argv)
    home: Path = args.home.resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    # This process imports Airflow too (imports step, sandbox): set its home before anything does.
    os.environ.update(airflow_env(home / "driver"))
    print(f"== smoke on Airflow {AIRFLOW_VERSION} ({sys.executable}); logs under {home}", flush=True)
    started = time.monotonic()
    for name in args.step or list(STEPS):
        step_start = time.monotonic()
        print(f"== smoke [{name}]", flush=True)
        try:
            summary = STEPS[name](home)
        except (SmokeFailure, subprocess.TimeoutExpired) as exc:
            print(f"== smoke [{name}] FAILED after {time.monotonic() - step_start:.0f}s: {exc}", flush=True)
            return 1
        print(f"== smoke [{name}] ok in {time.monotonic() - step_start:.0f}s: {summary}", flush=True)
    print(f"== smoke on Airflow {AIRFLOW_VERSION}: passed in {time.monotonic() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
