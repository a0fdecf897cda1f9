"""Peak memory while streaming many patents into SQLite through a data operator.

The driver starts the sandbox (its own process) and then a fresh Python process that runs
``PatsnapLegalInformationOperator(...).execute(context={})`` over ``--patents`` patent numbers into a
SQLite file. That child reports its peak RSS (``getrusage().ru_maxrss``) and samples its current RSS
twice a second, so the printout shows whether memory is flat (it should be: rows are written batch by
batch, and no new call starts while 32 fetched batches wait to be written) and not only how high it
peaked.

Speed is not the point here, so the sandbox runs fast (``--latency 0.05 --qps 200`` by default).

    python benchmarks/memory.py [--patents 200000] [--latency 0.05] [--qps 200]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (
    SandboxProcess,
    airflow_env,
    dump_json,
    iter_patent_numbers,
    peak_rss_mb,
    print_check,
    sandbox_cpu_text,
    sandbox_flags,
    sqlite_connection,
)

TARGET_MB = 300.0
MAX_GROWTH_AFTER_25PCT_MB = 30.0
CONN_ID = "patsnap_bench"
WAREHOUSE_ID = "bench_warehouse"


def current_rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(patents: int) -> dict[str, Any]:
    """Runs in the measured process: the connections are already in the environment."""
    logging.disable(logging.INFO)
    from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

    numbers = list(iter_patent_numbers(patents))
    operator = PatsnapLegalInformationOperator(
        task_id="memory",
        patent_numbers=numbers,
        patsnap_conn_id=CONN_ID,
        sql_conn_id=WAREHOUSE_ID,
        table="rows",
    )
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        start = time.monotonic()
        while not stop.wait(0.5):
            samples.append((time.monotonic() - start, current_rss_mb()))

    before = current_rss_mb()
    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    sampler.start()
    summary = operator.execute(context={})
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - t0
    quarter = [rss for at, rss in samples if at >= seconds * 0.25] or [before]
    return {
        "patents": summary["requested"],
        "rows": summary["rows"],
        "calls": summary["calls"],
        "seconds": round(seconds, 1),
        "rss_before_run_mb": round(before, 1),
        "rss_at_25pct_mb": round(quarter[0], 1),
        "rss_last_75pct_max_mb": round(max(quarter), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "samples": len(samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patents", type=int, default=200_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--qps", type=float, default=200.0)
    parser.add_argument("--workdir")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.patents)), flush=True)
        return 0

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="patsnap-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "memory.db"
    warehouse.unlink(missing_ok=True)
    with SandboxProcess(
        *sandbox_flags(latency=args.latency, qps=args.qps), log_path=workdir / "sandbox.log"
    ) as sandbox:
        env = {
            **os.environ,
            **airflow_env(
                workdir,
                connections={
                    CONN_ID: sandbox.connection(qps=args.qps),
                    WAREHOUSE_ID: sqlite_connection(warehouse),
                },
                apply=False,
            ),
        }
        window = sandbox.cpu_window()
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", "--patents", str(args.patents)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        sandbox_cpu = window.stop()
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
        print_check("memory", False, f"the measured process failed with exit code {proc.returncode}")
        return 1
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = result["rss_last_75pct_max_mb"] - result["rss_at_25pct_mb"]
    # Flat: after the first quarter (imports, pools, caches warmed up) memory must not keep growing.
    ok = result["peak_rss_mb"] < TARGET_MB and growth < MAX_GROWTH_AFTER_25PCT_MB
    result.update(
        latency_s=args.latency,
        qps=args.qps,
        target_mb=TARGET_MB,
        growth_after_25pct_mb=round(growth, 1),
        ok=ok,
        **sandbox_cpu,
    )
    print_check(
        "memory",
        ok,
        f"peak RSS {result['peak_rss_mb']} MB streaming {result['patents']} patents ({result['rows']} rows, "
        f"{result['calls']} calls, {result['seconds']} s) into SQLite; RSS {result['rss_before_run_mb']} MB "
        f"before the run, {result['rss_at_25pct_mb']} MB at 25 %, at most {result['rss_last_75pct_max_mb']} MB "
        f"after (growth {growth:+.1f} MB); target < {TARGET_MB:.0f} MB, growth < {MAX_GROWTH_AFTER_25PCT_MB:.0f} MB; "
        f"{sandbox_cpu_text(sandbox_cpu)} (the measured process's start included)",
    )
    if args.json:
        dump_json(args.json, result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
