"""Throughput against the rate limit, and against the naive hand-written client (the baseline).

The sandbox runs over loopback with a fixed latency per call (default 1 s; the vendor's is 5 s normal,
10 s max) and a server-side QPS limit (default 10). The connection's ``qps`` extra is set to the same
figure, as a user would set it to the QPS PatSnap granted. One call carries at most 100 patents, so the
physical limit is ``qps x 100`` patents per second, whatever the client does.

1. hook:     ``PatsnapHook.lookup`` over ``--patents`` patent numbers (P032), results consumed and dropped.
2. operator: a data operator (default P026, the one with the most rows) over another ``--patents``
             numbers into a SQLite file through ``sql_conn_id`` (upserts, batch by batch), via
             ``op.execute(context={})``.
3. baseline: the way a user writes it by hand: fetch a token, then a sequential ``for`` loop of
             ``requests.get`` with 100 numbers per call, on ``--baseline-patents`` numbers.

Printed: patents/s of each, achieved / limit (target >= 0.9) and ours / baseline (target >= 8x; at
these settings the ceiling is qps x latency = 10x).

    python benchmarks/throughput.py [--patents 20000] [--baseline-patents 2000] [--latency 1] [--qps 10]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (
    PATENTS_PER_CALL,
    SandboxProcess,
    airflow_env,
    dump_json,
    operator_class,
    patent_numbers,
    print_check,
    sandbox_flags,
    sqlite_connection,
)

RATIO_TARGET = 0.9
BASELINE_TARGET = 8.0
CONN_ID = "patsnap_bench"
WAREHOUSE_ID = "bench_warehouse"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def naive_baseline(base_url: str, client_id: str, client_secret: str, numbers: list[str]) -> int:
    """What a user writes without the provider: one token, then one call after another."""
    import requests

    token = requests.post(
        f"{base_url}/oauth/token",
        auth=(client_id, client_secret),
        data={"grant_type": "client_credentials"},
        timeout=30,
    ).json()["token"]
    found = 0
    for start in range(0, len(numbers), 100):
        batch = numbers[start : start + 100]
        response = requests.get(
            f"{base_url}/advanced-patent-data/award-data",
            params={"apikey": client_id, "patent_number": ",".join(batch)},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        if not body.get("status"):
            raise RuntimeError(f"baseline call failed: {body.get('error_code')}")
        found += len(body["data"] or [])
    return found


class InProcessSandbox:
    """The same interface as SandboxProcess, for ``--sandbox in-process``."""

    def __init__(self, latency: float, qps: float) -> None:
        import secrets

        from airflow_provider_patsnap.sandbox import Sandbox, SandboxConfig

        self.client_id = f"bench-client-{secrets.token_hex(6)}"
        self.client_secret = f"bench-secret-{secrets.token_hex(12)}"
        self.sandbox = Sandbox(
            SandboxConfig(
                port=0, latency=latency, qps=qps, client_id=self.client_id, client_secret=self.client_secret
            )
        ).start()
        self.base_url = self.sandbox.base_url

    def connection(self, auth: str = "secret", **extra: Any) -> dict[str, Any]:
        return {
            "conn_type": "patsnap",
            "host": self.base_url,
            "login": self.client_id,
            "password": self.client_secret,
            "extra": extra,
        }

    def stats(self) -> dict[str, Any]:
        return self.sandbox.stats()

    def cpu_seconds(self) -> float | None:
        return None  # shares our process: its CPU is in ours

    def stop(self) -> None:
        self.sandbox.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--patents", type=int, default=20_000, help="patents per run of ours (hook, operator)"
    )
    parser.add_argument("--baseline-patents", type=int, default=2_000, help="patents for the naive loop")
    parser.add_argument("--latency", type=float, default=1.0, help="sandbox seconds per call")
    parser.add_argument("--qps", type=float, default=10.0, help="sandbox QPS limit = the connection's qps")
    parser.add_argument(
        "--endpoint", default="P026", help="endpoint of the operator run (P022/P026/P031/P032)"
    )
    parser.add_argument(
        "--sandbox",
        choices=("process", "in-process"),
        default="process",
        help="run the sandbox in its own process (default) or in this one",
    )
    parser.add_argument(
        "--concurrency", type=int, help="the connection's `concurrency` extra (default: the hook's own)"
    )
    parser.add_argument("--workdir", help="where the SQLite file and AIRFLOW_HOME go (default: a temp dir)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--verbose", action="store_true", help="keep the task's INFO log lines")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="patsnap-throughput-"))
    workdir.mkdir(parents=True, exist_ok=True)
    limit = args.qps * PATENTS_PER_CALL
    if args.sandbox == "process":
        sandbox: Any = SandboxProcess(
            *sandbox_flags(latency=args.latency, qps=args.qps), log_path=workdir / "sandbox.log"
        )
    else:
        sandbox = InProcessSandbox(args.latency, args.qps)
    warehouse = workdir / "throughput.db"
    warehouse.unlink(missing_ok=True)
    airflow_env(
        workdir,
        connections={
            CONN_ID: sandbox.connection(
                qps=args.qps, **({"concurrency": args.concurrency} if args.concurrency else {})
            ),
            WAREHOUSE_ID: sqlite_connection(warehouse),
        },
    )

    from airflow_provider_patsnap.endpoints import ENDPOINTS
    from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

    if not args.verbose:  # one log line per batch would drown the figures
        logging.disable(logging.INFO)

    results: dict[str, Any] = {
        "settings": {
            "patents": args.patents,
            "baseline_patents": args.baseline_patents,
            "latency_s": args.latency,
            "qps": args.qps,
            "limit_patents_per_s": limit,
            "operator_endpoint": args.endpoint,
            "sandbox": args.sandbox,
        }
    }
    try:
        # 1. the hook's batch lookup
        hook = PatsnapHook(CONN_ID)
        numbers = patent_numbers(args.patents, start=0)
        cpu0, sb_cpu0, t0 = cpu_seconds(), sandbox.cpu_seconds(), time.perf_counter()
        seen = found = 0
        for result in hook.lookup(ENDPOINTS["P032"], numbers, "patent_number"):
            seen += len(result.requested)
            found += len(result.patents)
        hook_s = time.perf_counter() - t0
        hook_rate = seen / hook_s
        results["hook"] = {
            "patents": seen,
            "found": found,
            "seconds": round(hook_s, 2),
            "patents_per_s": round(hook_rate, 1),
            "ratio_to_limit": round(hook_rate / limit, 3),
            "calls": hook.stats.calls,
            "retries": hook.stats.retries,
            "concurrency": hook.settings.concurrency,
            "client_cpu_s": round(cpu_seconds() - cpu0, 2),
            "sandbox_cpu_s": None if sb_cpu0 is None else round(sandbox.cpu_seconds() - sb_cpu0, 2),
        }

        # 2. a data operator into SQLite
        data_operator = operator_class(args.endpoint)
        numbers = patent_numbers(args.patents, start=args.patents)
        operator = data_operator(
            task_id="throughput",
            patent_numbers=numbers,
            patsnap_conn_id=CONN_ID,
            sql_conn_id=WAREHOUSE_ID,
            table="bench_rows",
        )
        cpu0, sb_cpu0, t0 = cpu_seconds(), sandbox.cpu_seconds(), time.perf_counter()
        summary = operator.execute(context={})
        op_s = time.perf_counter() - t0
        op_rate = summary["requested"] / op_s
        with sqlite3.connect(warehouse) as db:
            table_rows = db.execute("SELECT COUNT(*) FROM bench_rows").fetchone()[0]
        results["operator"] = {
            "class": data_operator.__name__,
            "patents": summary["requested"],
            "found": summary["found"],
            "rows": summary["rows"],
            "table_rows": table_rows,
            "seconds": round(op_s, 2),
            "patents_per_s": round(op_rate, 1),
            "ratio_to_limit": round(op_rate / limit, 3),
            "calls": summary["calls"],
            "retries": summary["retries"],
            "client_cpu_s": round(cpu_seconds() - cpu0, 2),
            "sandbox_cpu_s": None if sb_cpu0 is None else round(sandbox.cpu_seconds() - sb_cpu0, 2),
        }

        # 3. the naive baseline
        numbers = patent_numbers(args.baseline_patents, start=2 * args.patents)
        t0 = time.perf_counter()
        naive_baseline(sandbox.base_url, sandbox.client_id, sandbox.client_secret, numbers)
        base_s = time.perf_counter() - t0
        base_rate = len(numbers) / base_s
        results["baseline"] = {
            "patents": len(numbers),
            "seconds": round(base_s, 2),
            "patents_per_s": round(base_rate, 1),
            "ceiling_ratio": round(args.qps * args.latency, 1),
        }
        results["sandbox_stats"] = {
            key: value
            for key, value in sandbox.stats().items()
            if key in ("requests", "errors", "max_in_flight")
        }
    finally:
        sandbox.stop()

    hook_ok = results["hook"]["ratio_to_limit"] >= RATIO_TARGET
    op_ok = results["operator"]["ratio_to_limit"] >= RATIO_TARGET
    speedup_hook = hook_rate / base_rate
    speedup_op = op_rate / base_rate
    speedup_ok = min(speedup_hook, speedup_op) >= BASELINE_TARGET
    results["speedup_hook"] = round(speedup_hook, 2)
    results["speedup_operator"] = round(speedup_op, 2)
    results["ok"] = {"hook": hook_ok, "operator": op_ok, "baseline": speedup_ok}

    h, o, b = results["hook"], results["operator"], results["baseline"]
    print(
        f"settings: sandbox latency {args.latency:g} s, QPS {args.qps:g} ({args.sandbox}); "
        f"limit {limit:g} patents/s; hook concurrency {h['concurrency']}",
        flush=True,
    )
    print_check(
        "throughput hook.lookup",
        hook_ok,
        f"{h['patents']} patents in {h['seconds']} s = {h['patents_per_s']} patents/s = "
        f"{h['ratio_to_limit']:.3f} of the limit (target >= {RATIO_TARGET}); {h['calls']} calls, "
        f"{h['retries']} retries; CPU ours {h['client_cpu_s']} s, sandbox {h['sandbox_cpu_s']} s",
    )
    print_check(
        f"throughput {o['class']} -> SQLite",
        op_ok,
        f"{o['patents']} patents ({o['rows']} rows, table has {o['table_rows']}) in {o['seconds']} s = "
        f"{o['patents_per_s']} patents/s = {o['ratio_to_limit']:.3f} of the limit (target >= {RATIO_TARGET}); "
        f"{o['calls']} calls, {o['retries']} retries; CPU ours {o['client_cpu_s']} s, "
        f"sandbox {o['sandbox_cpu_s']} s",
    )
    print_check(
        "speed-up over the naive loop",
        speedup_ok,
        f"baseline {b['patents']} patents in {b['seconds']} s = {b['patents_per_s']} patents/s; "
        f"hook {speedup_hook:.2f}x, operator {speedup_op:.2f}x (target >= {BASELINE_TARGET:g}x, "
        f"ceiling {b['ceiling_ratio']:g}x)",
    )
    if args.json:
        dump_json(args.json, results)
    return 0 if hook_ok and op_ok and speedup_ok else 1


if __name__ == "__main__":
    sys.exit(main())
