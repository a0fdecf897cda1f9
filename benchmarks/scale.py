"""Scale-out: ids from a PostgreSQL query, mapped shards, peak memory and cost per patent as the list grows.

For each size (``--sizes``, default 10^5 and 10^7) a table of that many patent numbers is loaded into a
throwaway PostgreSQL (COPY); then ``--shards`` tasks run one after another, each in its own process as a
mapped task is: ``PatsnapLegalInformationOperator(patent_numbers=<its shard spec>)`` with the spec
``SqlIds(..., id_column="pn").shards(n)`` makes (the only thing that would pass through XCom), landing its
rows in a PostgreSQL table (``sync``). The sandbox runs in its own process (no latency, no QPS limit), so
what is measured is the client: each task's peak RSS, its CPU per patent fetched, and the spec's size.

    python benchmarks/scale.py [--sizes 100000 10000000] [--shards 16] [--json out.json]

Goals (open issue "Scale out"): every task's peak RSS < 150 MB, no spec (XCom) over 10 kB, the CPU per
patent at the largest size within 1.2x of the smallest.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import SandboxProcess, airflow_env, dump_json, print_check, sandbox_flags

RSS_LIMIT_MB = 150.0
XCOM_LIMIT_BYTES = 10_000
COST_RATIO_LIMIT = 1.2
CONN_ID = "patsnap_scale"
WAREHOUSE = "scale_warehouse"


def load_ids(connection: dict[str, Any], count: int) -> None:
    """A fresh ``portfolio`` table of ``count`` patent numbers, loaded with COPY."""
    import psycopg

    with psycopg.connect(
        host=connection["host"],
        port=connection["port"],
        user=connection["login"],
        dbname=connection.get("schema") or "postgres",
    ) as db:
        db.execute("DROP TABLE IF EXISTS portfolio")
        db.execute("DROP TABLE IF EXISTS patsnap_legal_information, patsnap_legal_information_state")
        db.execute("DROP TABLE IF EXISTS patsnap_legal_information_rejects")
        db.execute("CREATE TABLE portfolio (pn TEXT)")
        with db.cursor().copy("COPY portfolio (pn) FROM STDIN") as copy:
            chunk = 100_000
            for start in range(0, count, chunk):
                buffer = io.StringIO()
                for number in range(start, min(start + chunk, count)):
                    buffer.write(f"CN{100000000 + number}A\n")
                copy.write(buffer.getvalue())


def run_shard(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """One mapped task in its own process: its summary, peak RSS, CPU seconds and wall seconds."""
    code = (
        "import json, resource, sys, time\n"
        "from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator\n"
        "spec = json.loads(sys.argv[1])\n"
        "op = PatsnapLegalInformationOperator(task_id='legal', patent_numbers=spec,\n"
        f"    patsnap_conn_id={CONN_ID!r}, sql_conn_id={WAREHOUSE!r})\n"
        "cpu0, wall0 = time.process_time(), time.perf_counter()\n"
        "summary = op.execute(context={})\n"
        "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(json.dumps({'summary': summary, 'cpu_s': time.process_time() - cpu0,\n"
        "    'wall_s': time.perf_counter() - wall0, 'peak_rss_mb': usage.ru_maxrss / 1024}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)], env=env, capture_output=True, text=True, check=False
    )
    if run.returncode != 0:
        raise RuntimeError(f"shard {spec['shard']} failed:\n{run.stderr[-3000:]}")
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def measure(size: int, shards: int, postgres: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    from airflow_provider_patsnap.id_sources import SqlIds

    started = time.perf_counter()
    load_ids(postgres, size)
    loaded = time.perf_counter() - started
    specs = SqlIds(WAREHOUSE, "SELECT pn FROM portfolio", id_column="pn").shards(shards)
    results = [run_shard(spec, env) for spec in specs]
    patents = sum(result["summary"]["requested"] for result in results)
    cpu = sum(result["cpu_s"] for result in results)
    figures = {
        "size": size,
        "shards": shards,
        "load_s": round(loaded, 1),
        "patents": patents,
        "rows": sum(result["summary"]["rows"] for result in results),
        "cpu_s": round(cpu, 1),
        "us_per_patent": round(cpu / max(patents, 1) * 1e6, 1),
        "peak_rss_mb": round(max(result["peak_rss_mb"] for result in results), 1),
        "largest_spec_bytes": max(len(json.dumps(spec)) for spec in specs),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(
        f"  {size:,} ids in {shards} shards: {patents:,} fetched, {figures['us_per_patent']} µs/patent, "
        f"peak RSS {figures['peak_rss_mb']} MB, largest spec {figures['largest_spec_bytes']} bytes, "
        f"{figures['wall_s']} s"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 10_000_000])
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--workdir")
    parser.add_argument("--json")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="patsnap-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        from sql_write_paths import postgres_cluster

        postgres = json.loads(stack.enter_context(postgres_cluster()))
        sandbox = stack.enter_context(
            SandboxProcess(*sandbox_flags(latency=0, qps=0), log_path=workdir / "sandbox.log")
        )
        env = {
            **os.environ,
            **airflow_env(
                workdir,
                connections={CONN_ID: sandbox.connection(qps=0), WAREHOUSE: postgres},
                log_level="ERROR",
            ),
        }
        os.environ.update(env)
        cpu0 = sandbox.cpu_seconds()
        results = [measure(size, args.shards, postgres, env) for size in args.sizes]
        sandbox_cpu = (sandbox.cpu_seconds() or 0) - (cpu0 or 0)
    smallest, largest = results[0], results[-1]
    ratio = largest["us_per_patent"] / max(smallest["us_per_patent"], 1e-9)
    ok_rss = all(result["peak_rss_mb"] < RSS_LIMIT_MB for result in results)
    ok_xcom = all(result["largest_spec_bytes"] <= XCOM_LIMIT_BYTES for result in results)
    ok_cost = ratio <= COST_RATIO_LIMIT
    print_check(
        "scale: every task's peak RSS",
        ok_rss,
        f"at most {max(r['peak_rss_mb'] for r in results)} MB; goal < {RSS_LIMIT_MB:g}",
    )
    print_check(
        "scale: what passes through XCom",
        ok_xcom,
        f"a spec of at most {max(r['largest_spec_bytes'] for r in results)} bytes; goal <= {XCOM_LIMIT_BYTES:,}",
    )
    print_check(
        "scale: cost per patent",
        ok_cost,
        f"{largest['us_per_patent']} µs at {largest['size']:,} vs {smallest['us_per_patent']} µs at "
        f"{smallest['size']:,}: {ratio:.2f}x; goal <= {COST_RATIO_LIMIT}x (sandbox CPU {sandbox_cpu:.0f} s)",
    )
    ok = ok_rss and ok_xcom and ok_cost
    if args.json:
        dump_json(
            args.json,
            {
                "runs": results,
                "cost_ratio": round(ratio, 2),
                "sandbox_cpu_s": round(sandbox_cpu, 1),
                "ok": ok,
            },
        )
    return 0 if ok else 1


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    sys.exit(main())
