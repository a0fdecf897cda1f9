"""Rows/s of the SQL write paths on a throwaway PostgreSQL (and SQLite), on the same generated rows.

- ``insert_rows``: what release 0.1 did per batch, ``hook.insert_rows(replace=True, executemany=True)``,
  a connection per batch.
- ``SqlSink``: the task's one connection, rows sorted, COPY into a temporary table and one upsert per
  write on PostgreSQL (psycopg 3), ``executemany`` of the dialect's upsert elsewhere. A write takes the
  batches that wait for it, as the data operators hand them over when the destination is the
  bottleneck (``WRITE_GROUP`` = 16 batches at most): a write path's rows/s is measured at capacity.

Each path writes ``--rows`` new rows, then the same rows again (the upsert of a rerun). Run:
``PYTHONPATH=. python benchmarks/sql_write_paths.py --rows 500000``. Needs PostgreSQL server binaries
under /usr/lib/postgresql/*/bin (as the tests' fixture); the cluster lives in a temporary folder.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ROWS_PER_BATCH = 600  # 100 patents of about 6 legal events, as P026 yields


@contextmanager
def postgres_cluster() -> Iterator[str]:
    bin_dir = os.path.dirname(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1])
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = tempfile.mkdtemp(prefix="patsnap-bench-pg-")
    if as_postgres:
        shutil.chown(base, "postgres", "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = f"{base}/data"
    initdb = [f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale"]
    subprocess.run([*as_postgres, *initdb], check=True, capture_output=True)
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = f"{bin_dir}/pg_ctl"
    subprocess.run(
        [*as_postgres, pg_ctl, "-D", data, "-o", options, "-l", f"{base}/log", "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": port,
                "login": "postgres",
                "schema": "postgres",
            }
        )
    finally:
        subprocess.run(
            [*as_postgres, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)


def generated_rows(count: int) -> list[tuple[Any, ...]]:
    from airflow_provider_patsnap.endpoints import LEGAL_INFORMATION

    rows: list[tuple[Any, ...]] = []
    patent = 0
    while len(rows) < count:
        events = [
            {
                "event_code": f"E{n}",
                "event_date": 20200101 + n,
                "event_desc": "专利权的终止",
                "ref_country_code": "CN",
            }
            for n in range(6)
        ]
        payload = {
            "pn": f"CN{patent}A",
            "patent_id": f"id-{patent}",
            "patsnap_legal_data": {"inpadoc_legal_data": events},
        }
        rows.extend(LEGAL_INFORMATION.map_patent(payload, "2026-01-01T00:00:00+00:00").rows)
        patent += 1
    return rows[:count]


def batches(rows: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    for start in range(0, len(rows), ROWS_PER_BATCH):
        yield rows[start : start + ROWS_PER_BATCH]


def old_insert_rows(conn_id: str, table: str, rows: list[tuple[Any, ...]]) -> None:
    from airflow_provider_patsnap._compat import BaseHook
    from airflow_provider_patsnap.endpoints import LEGAL_INFORMATION

    hook = BaseHook.get_connection(conn_id).get_hook()
    names = list(LEGAL_INFORMATION.column_names)
    body = ", ".join(f"{c.name} {c.sql_type}" for c in LEGAL_INFORMATION.columns)
    hook.run(f"CREATE TABLE IF NOT EXISTS {table} ({body}, PRIMARY KEY (record_key))")
    for batch in batches(rows):
        hook.insert_rows(
            table,
            batch,
            target_fields=names,
            commit_every=1000,
            replace=True,
            replace_index=["record_key"],
            executemany=True,
        )


def sql_sink(conn_id: str, table: str, rows: list[tuple[Any, ...]]) -> None:
    from airflow_provider_patsnap.endpoints import LEGAL_INFORMATION
    from airflow_provider_patsnap.operators._run import WRITE_GROUP
    from airflow_provider_patsnap.sinks.base import FetchedBatch
    from airflow_provider_patsnap.sinks.sql import SqlSink

    fetched = FetchedBatch([], "2026-01-01T00:00:00+00:00")
    with SqlSink(conn_id, table, LEGAL_INFORMATION.columns, endpoint="P026") as sink:
        for start in range(0, len(rows), ROWS_PER_BATCH * WRITE_GROUP):
            sink.write_batch(rows[start : start + ROWS_PER_BATCH * WRITE_GROUP], (), fetched)


def measure(
    name: str,
    write: Callable[[str, str, list[tuple[Any, ...]]], None],
    conn_id: str,
    rows: list[tuple[Any, ...]],
    round_number: int = 0,
) -> dict[str, float]:
    table = f"bench_{name}_{round_number}"
    write(conn_id, f"{table}_warm_up", rows[:ROWS_PER_BATCH])  # imports, engines, first connection
    figures = {}
    for phase in ("insert", "rerun"):
        started = time.perf_counter()
        write(conn_id, table, rows)
        seconds = time.perf_counter() - started
        figures[phase] = len(rows) / seconds
        print(
            f"{conn_id:>8} {name:<12} {phase:<6} {len(rows):>8,} rows in {seconds:7.2f} s = {figures[phase]:>9,.0f} rows/s",
            flush=True,
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=2, help="turns of each path (the best is kept)")
    parser.add_argument("--json", help="write the rows/s of each path and phase to this JSON file")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="patsnap-bench-home-"))
    rows = generated_rows(args.rows)
    with postgres_cluster() as postgres, tempfile.TemporaryDirectory() as folder:
        os.environ["AIRFLOW_CONN_BENCH_PG"] = postgres
        os.environ["AIRFLOW_CONN_BENCH_SQLITE"] = json.dumps(
            {"conn_type": "sqlite", "host": f"{folder}/bench.db"}
        )
        results: dict[str, Any] = {"rows": args.rows}
        for conn_id in ("bench_pg", "bench_sqlite"):
            # The two paths take turns, --repeat times, each keeping its best: a machine that slows down
            # (shared cores) part-way then slows both, and the ratio does not move with it.
            old: dict[str, float] = {}
            new: dict[str, float] = {}
            for round_number in range(args.repeat):
                for best, name, write in ((old, "insert_rows", old_insert_rows), (new, "sqlsink", sql_sink)):
                    figures = measure(name, write, conn_id, rows, round_number)
                    for phase, rate in figures.items():
                        best[phase] = max(best.get(phase, 0.0), rate)
            results[conn_id] = {phase: new[phase] / old[phase] for phase in old}
            results[f"{conn_id}_rows_per_s"] = {"insert_rows": old, "sqlsink": new}
            print(
                f"{conn_id}: SqlSink / insert_rows = "
                + ", ".join(f"{k} {v:.1f}x" for k, v in results[conn_id].items())
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
