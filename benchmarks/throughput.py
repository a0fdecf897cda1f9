"""Throughput at the vendor's latency, side by side: the provider, a reference asyncio client, a naive loop.

For each latency (``5``: every call takes 5 s, the vendor's normal; ``5-10``: uniform between 5 and 10 s,
up to its worst) and each QPS, the sandbox runs in its own process with that latency and a server-side
QPS limit, and the connection's ``qps`` extra says the same, nothing else set (default settings). One
call carries 100 patents, so the physical limit is ``qps x 100`` patents/s.

- provider:  ``PatsnapHook.lookup`` over P026 (legal data), results consumed and dropped.
- asyncio:   :func:`reference_client.asyncio_lookup`, calls 1/qps apart on one event loop, with
             ``ceil(qps x 10 x 1.2)`` calls at most in flight (the provider's default rule).
- naive:     :func:`reference_client.naive_lookup`, one call after another (run once per latency: it
             cannot use any QPS above 1 / latency).

The figure is the steady-state rate: patents completed between the 10 % and 90 % marks of the run,
divided by the time between them, over the limit. Client CPU per patent is taken over the same window
(process CPU, all threads), so the ramp-up (threads, connections) is not in it; the whole run's figure is
printed too. Each run sends for about ``--send-seconds``. Beside each run: the sandbox process's CPU over
that run (seconds, and cores = CPU / wall), which says whether the sandbox could have been the limit.

    python benchmarks/throughput.py [--qps 10 50] [--latency 5 5-10] [--send-seconds 30]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
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
    patent_numbers,
    print_check,
    sandbox_cpu_text,
)
from reference_client import asyncio_lookup, naive_lookup

RATIO_TARGET = 0.95
FETCH_CPU_TARGET_US = 30.0
FETCH_CPU_AT_QPS = 50.0
CONN_ID = "patsnap_bench"
NAIVE_CALLS = 4


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Run:
    """Completion times of one client's run, with the process CPU at each, and what they make."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.cpu_started = cpu_seconds()
        self.stamps: list[tuple[float, int, float]] = []  # (seconds, patents done, CPU seconds)

    def add(self, done: int) -> None:
        self.stamps.append((time.perf_counter() - self.started, done, cpu_seconds() - self.cpu_started))

    def figures(self, limit: float) -> dict[str, Any]:
        seconds, done, cpu = self.stamps[-1]
        low = next(stamp for stamp in self.stamps if stamp[1] >= 0.1 * done)
        high = next(stamp for stamp in self.stamps if stamp[1] >= 0.9 * done)
        window = high[1] - low[1]
        steady = window / (high[0] - low[0]) if high[0] > low[0] else float("nan")
        return {
            "patents": done,
            "seconds": round(seconds, 1),
            "steady_patents_per_s": round(steady, 1),
            "steady_ratio": round(steady / limit, 3),
            "overall_ratio": round(done / seconds / limit, 3),
            "cpu_us_per_patent_window": round((high[2] - low[2]) / window * 1e6, 1) if window else None,
            "cpu_us_per_patent_run": round(cpu / done * 1e6, 1),
        }


def run_provider(numbers: list[str]) -> tuple[Run, dict[str, Any]]:
    from airflow_provider_patsnap.endpoints import LEGAL_INFORMATION
    from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

    hook = PatsnapHook(CONN_ID)
    run, done = Run(), 0
    for result in hook.lookup(LEGAL_INFORMATION, numbers):
        done += len(result.requested)
        run.add(done)
    extra = {
        "concurrency": hook.settings.concurrency,
        "calls": hook.stats.calls,
        "retries": hook.stats.retries,
    }
    return run, extra


def run_asyncio(sandbox: SandboxProcess, numbers: list[str], qps: float) -> tuple[Run, dict[str, Any]]:
    concurrency = math.ceil(qps * 10 * 1.2)
    run = Run()
    completion = asyncio_lookup(
        sandbox.base_url, sandbox.client_id, sandbox.client_secret, numbers, qps, concurrency
    )
    cpu = cpu_seconds() - run.cpu_started
    # The event loop's stamps carry no CPU reading: the window's CPU is the run's, pro rata.
    run.stamps = [(at, done, cpu * done / completion.done) for at, done in completion.stamps]
    return run, {"concurrency": concurrency}


def run_naive(sandbox: SandboxProcess, numbers: list[str]) -> tuple[Run, dict[str, Any]]:
    run = Run()
    completion = naive_lookup(sandbox.base_url, sandbox.client_id, sandbox.client_secret, numbers)
    cpu = cpu_seconds() - run.cpu_started
    run.stamps = [(at, done, cpu * done / completion.done) for at, done in completion.stamps]
    return run, {}


def latency_flags(latency: str) -> list[str]:
    low, _, high = latency.partition("-")
    jitter = float(high) - float(low) if high else 0.0
    return ["--latency", low, "--latency-jitter", str(jitter)]


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    offset = 0
    for latency in args.latency:
        naive_done = False
        for qps in args.qps:
            limit = qps * PATENTS_PER_CALL
            count = int(args.send_seconds * limit)
            with SandboxProcess(
                *latency_flags(latency), "--qps", str(qps), log_path=workdir / "sandbox.log"
            ) as sandbox:
                airflow_env(workdir, connections={CONN_ID: sandbox.connection(qps=qps)})
                clients: list[tuple[str, Any]] = [
                    ("provider", lambda n, s=sandbox: run_provider(n)),
                    ("asyncio", lambda n, s=sandbox, q=qps: run_asyncio(s, n, q)),
                ]
                if not naive_done:
                    clients.append(("naive", lambda n, s=sandbox: run_naive(s, n[: NAIVE_CALLS * 100])))
                    naive_done = True
                # The fetch-CPU goal's configuration runs each client --cpu-repeat times, alternating: on
                # shared cores other work inflates a run's CPU time (never deflates it), so the goal is
                # judged on each client's lowest figure, and every run is kept in the JSON.
                rounds = args.cpu_repeat if (qps, latency) == (FETCH_CPU_AT_QPS, "5") else 1
                for round_number in range(rounds):
                    for client, run_client in clients:
                        if client == "naive" and round_number:
                            continue
                        numbers = patent_numbers(count, start=offset)
                        offset += count
                        window = sandbox.cpu_window()
                        run, extra = run_client(numbers)
                        extra.update(window.stop())
                        figures = {
                            "latency": latency,
                            "qps": qps,
                            "client": client,
                            "round": round_number,
                            **run.figures(limit),
                            **extra,
                        }
                        runs.append(figures)
                        print(
                            f"      latency {latency} s, QPS {qps:g}, {client:<8}: {figures['patents']:>7,} patents in "
                            f"{figures['seconds']:>5} s, steady {figures['steady_ratio']:.3f} of the limit "
                            f"(whole run {figures['overall_ratio']:.3f}); CPU {figures['cpu_us_per_patent_window']} "
                            f"µs/patent in the window, {figures['cpu_us_per_patent_run']} over the run; "
                            f"{sandbox_cpu_text(figures)}",
                            flush=True,
                        )
    return {"runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qps", type=float, nargs="+", default=[10.0, 50.0])
    parser.add_argument("--latency", nargs="+", default=["5", "5-10"], help="seconds, or LOW-HIGH uniform")
    parser.add_argument("--send-seconds", type=float, default=30.0, help="about how long each run sends")
    parser.add_argument(
        "--cpu-repeat",
        type=int,
        default=3,
        help=f"runs of each client at QPS {FETCH_CPU_AT_QPS:g}, latency 5 s",
    )
    parser.add_argument("--workdir")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="patsnap-throughput-"))
    workdir.mkdir(parents=True, exist_ok=True)
    logging.disable(logging.WARNING)  # a binding-concurrency warning would be a finding: it is not expected
    results = measure(args, workdir)
    results["settings"] = {
        "qps": args.qps,
        "latency": args.latency,
        "send_seconds": args.send_seconds,
        "endpoint": "P026",
        "naive_calls": NAIVE_CALLS,
    }
    provider = [run for run in results["runs"] if run["client"] == "provider"]
    ratio_ok = all(run["steady_ratio"] >= RATIO_TARGET for run in provider)
    target_runs = [run for run in provider if run["qps"] == FETCH_CPU_AT_QPS and run["latency"] == "5"]
    cpu_runs = [min(target_runs, key=lambda run: run["cpu_us_per_patent_window"])] if target_runs else []
    cpu_ok = (
        all(run["cpu_us_per_patent_window"] <= FETCH_CPU_TARGET_US for run in cpu_runs) if cpu_runs else None
    )
    results["ok"] = {"ratio": ratio_ok, "fetch_cpu": cpu_ok}
    for run in provider:
        print_check(
            f"provider at latency {run['latency']} s, QPS {run['qps']:g}",
            run["steady_ratio"] >= RATIO_TARGET,
            f"{run['steady_ratio']:.3f} of the limit in steady state (target >= {RATIO_TARGET}); "
            f"concurrency {run['concurrency']}; {sandbox_cpu_text(run)}",
        )
    for run in cpu_runs:
        print_check(
            f"provider fetch CPU at QPS {run['qps']:g}",
            run["cpu_us_per_patent_window"] <= FETCH_CPU_TARGET_US,
            f"{run['cpu_us_per_patent_window']} µs/patent in steady state, {run['cpu_us_per_patent_run']} over "
            f"the whole run: the lowest of {len(target_runs)} run(s) (target <= {FETCH_CPU_TARGET_US:g})",
        )
    if args.json:
        dump_json(args.json, results)
    return 0 if ratio_ok and cpu_ok is not False else 1


if __name__ == "__main__":
    sys.exit(main())
