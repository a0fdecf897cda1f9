"""One data task at the vendor's full QPS: can a single task land 10,000 patents/s?

The sandbox runs in its own process at ``--qps`` (default 100: it refuses a call beyond that with
67200002) with every call taking ``--latency`` seconds (default 5, the vendor's normal). One task,
``PatsnapLegalInformationOperator(...).execute(context={})`` with default settings (the connection's
``qps`` is the sandbox's, nothing else set), fetches P026 for about ``--send-seconds`` worth of patents
(``send_seconds x qps x 100``) and lands them in PostgreSQL (``write_mode="sync"``, a throwaway cluster
as ``sql_write_paths.postgres_cluster`` starts) or, in a run of its own, in an NDJSON file. Beside it, the
asyncio reference doing the same job (``reference_client.asyncio_load``: calls 1/qps apart, at most
``ceil(qps x 12)`` in flight, ``COPY`` + one upsert a write) into PostgreSQL: a figure both miss is the
machine's, one only the provider misses is the provider's. Each run has a fresh sandbox.

The figures come from the sandbox's own ledger (``/_sandbox/requests``): each call's arrival stamp, as
PatSnap would count it. The steady state is the window between the arrivals that carry the 10 % and
90 % marks of the patents answered (as ``scripts/e2e/scale_out.py`` counts them); its rate over the
limit ``qps x 100`` is the figure. Beside it: the 67200002 answers over the whole run; the client's
process CPU (every thread) per patent over the same window shifted by the latency (the calls that
arrived in it are answered, mapped and written then); the sandbox's CPU, and the PostgreSQL server's
(postmaster and backends), over that window, in cores. All three are sampled every 0.2 s on one clock
(the monotonic clock the sandbox stamps arrivals with).

    python benchmarks/task_throughput.py [--qps 100] [--latency 5] [--send-seconds 30]
        [--runs provider:postgres reference:postgres provider:ndjson] [--json out.json]
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (
    PATENTS_PER_CALL,
    ProcessTreeCpu,
    SandboxProcess,
    airflow_env,
    dump_json,
    patent_numbers,
    print_check,
    sandbox_cpu_text,
    server_on_port,
)

RATIO_TARGET = 0.95
REFUSED = 67200002
PATH = "/advanced-patent-data/legal-data"
CONN_ID = "patsnap_task"
PG_CONN_ID = "task_pg"
SAMPLE_SECONDS = 0.2
STEADY_MARKS = (0.1, 0.9)
RUNS = ("provider:postgres", "reference:postgres", "provider:ndjson", "reference:ndjson")


class Sampler:
    """Every ``SAMPLE_SECONDS``, on a thread of its own: (monotonic time, this process's CPU, the
    sandbox's CPU, the PostgreSQL server's CPU or 0)."""

    def __init__(self, sandbox: SandboxProcess, postgres: ProcessTreeCpu | None) -> None:
        self._sandbox, self._postgres = sandbox, postgres
        self.samples: list[tuple[float, float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _sample(self) -> None:
        sandbox = self._sandbox.cpu_seconds() or 0.0
        postgres = self._postgres.cpu_seconds() if self._postgres is not None else 0.0
        self.samples.append((time.monotonic(), time.process_time(), sandbox, postgres))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def at(self, moment: float) -> tuple[float, float, float]:
        """The three CPU counters at ``moment``, interpolated between the samples around it."""
        times = [sample[0] for sample in self.samples]
        index = min(max(bisect.bisect_left(times, moment), 1), len(times) - 1)
        (t0, *low), (t1, *high) = self.samples[index - 1], self.samples[index]
        share = min(max((moment - t0) / (t1 - t0), 0.0), 1.0) if t1 > t0 else 1.0
        return tuple(a + (b - a) * share for a, b in zip(low, high, strict=True))  # type: ignore[return-value]


def steady_window(records: list[dict[str, Any]]) -> tuple[float, float, int, int]:
    """(first, last arrival, patents between them, patents answered) of the steady state: the
    arrivals that carry the 10 % and 90 % marks of the patents answered, as scale_out.py counts them."""
    answered = sorted(
        (record["arrival"], len(record["ids"]))
        for record in records
        if record["path"] == PATH and record["http_status"] == 200 and not record["error_code"]
    )
    total = sum(count for _, count in answered)
    marks: list[tuple[float, int]] = []
    done = 0
    for arrival, count in answered:
        done += count
        while len(marks) < len(STEADY_MARKS) and done >= STEADY_MARKS[len(marks)] * total:
            marks.append((arrival, done))
    if len(marks) < 2 or marks[1][0] <= marks[0][0]:
        return math.nan, math.nan, 0, total
    (low, low_done), (high, high_done) = marks
    return low, high, high_done - low_done, total


@contextmanager
def quiet_airflow() -> Iterator[None]:
    """The task's lines (progress, the summary, the no-pool warning a direct execute() earns) stay out
    of the figures' output: retries and refusals are in the figures."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def provider_run(
    destination: str, sandbox: SandboxProcess, numbers: list[str], workdir: Path
) -> dict[str, Any]:
    from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator

    stamp = time.monotonic_ns()
    if destination == "postgres":
        kwargs: dict[str, Any] = {"sql_conn_id": PG_CONN_ID, "table": f"task_{stamp}", "write_mode": "sync"}
    else:
        kwargs = {"output_path": f"file://{workdir}/task-{stamp}.jsonl"}
    operator = PatsnapLegalInformationOperator(
        task_id=f"task_{destination}", patent_numbers=numbers, patsnap_conn_id=CONN_ID, **kwargs
    )
    with quiet_airflow():
        summary = operator.execute(context={})
    return {key: summary[key] for key in ("rows", "calls", "retries", "found", "missing")}


def reference_run(
    destination: str, sandbox: SandboxProcess, numbers: list[str], workdir: Path, qps: float, postgres: str
) -> dict[str, Any]:
    from cpu_per_patent import pg_conninfo
    from reference_client import NdjsonLines, PostgresCopy, asyncio_load

    from airflow_provider_patsnap.endpoints import LEGAL_INFORMATION

    columns = LEGAL_INFORMATION.columns
    stamp = time.monotonic_ns()

    async def open_destination() -> Any:
        if destination == "postgres":
            typed = [(column.name, column.sql_type) for column in columns]
            return await PostgresCopy.open(pg_conninfo(postgres), f"ref_{stamp}", typed)
        return NdjsonLines(workdir / f"ref-{stamp}.jsonl", [column.name for column in columns])

    concurrency = math.ceil(qps * 10 * 1.2)
    _, rows = asyncio_load(
        sandbox.base_url,
        sandbox.client_id,
        sandbox.client_secret,
        numbers,
        qps,
        concurrency,
        open_destination,
    )
    return {"rows": rows, "concurrency": concurrency}


def measure_run(
    client: str,
    destination: str,
    run: Callable[[SandboxProcess, list[str]], dict[str, Any]],
    numbers: list[str],
    args: argparse.Namespace,
    workdir: Path,
    postgres: ProcessTreeCpu | None,
    connections: dict[str, Any],
) -> dict[str, Any]:
    flags = ["--latency", str(args.latency), "--qps", str(args.qps)]
    with SandboxProcess(*flags, log_path=workdir / "sandbox.log") as sandbox:
        airflow_env(workdir, connections={CONN_ID: sandbox.connection(qps=args.qps), **connections})
        started = time.perf_counter()
        with Sampler(sandbox, postgres if destination == "postgres" else None) as sampler:
            extra = run(sandbox, numbers)
        seconds = time.perf_counter() - started
        records = sandbox.admin("GET", "requests")
    low, high, steady_patents, answered = steady_window(records)
    limit = args.qps * PATENTS_PER_CALL
    figures: dict[str, Any] = {
        "client": client,
        "destination": destination,
        "patents": len(numbers),
        "answered": answered,
        "seconds": round(seconds, 1),
        "refused": sum(record["error_code"] == REFUSED for record in records),
        "other_errors": sum(
            bool(record["error_code"]) and record["error_code"] != REFUSED for record in records
        ),
        **extra,
    }
    first, last = sampler.samples[0], sampler.samples[-1]
    figures["cpu_us_per_patent_run"] = round((last[1] - first[1]) / len(numbers) * 1e6, 1)
    if steady_patents:
        span = high - low
        # The calls that arrived in the window are answered a latency later: their work is done then.
        begin, end = sampler.at(low + args.latency), sampler.at(high + args.latency)
        client_cpu, sandbox_cpu, postgres_cpu = (b - a for a, b in zip(begin, end, strict=True))
        figures.update(
            steady_seconds=round(span, 1),
            steady_patents_per_s=round(steady_patents / span, 1),
            steady_ratio=round(steady_patents / span / limit, 3),
            cpu_us_per_patent_window=round(client_cpu / steady_patents * 1e6, 1),
            client_cores=round(client_cpu / span, 2),
            sandbox_cpu_s=round(sandbox_cpu, 2),
            sandbox_wall_s=round(span, 1),
            sandbox_cores=round(sandbox_cpu / span, 2),
            postgres_cores=round(postgres_cpu / span, 2) if destination == "postgres" else None,
            postgres_us_per_patent=(
                round(postgres_cpu / steady_patents * 1e6, 1) if destination == "postgres" else None
            ),
        )
    else:
        figures.update(steady_ratio=math.nan, cpu_us_per_patent_window=None)
    server = (
        f"; PostgreSQL {figures['postgres_cores']:.2f} cores ({figures['postgres_us_per_patent']} µs/patent)"
        if figures.get("postgres_cores") is not None
        else ""
    )
    print(
        f"      {client:<9} -> {destination:<8}: {answered:,} of {len(numbers):,} patents answered in "
        f"{figures['seconds']} s, steady {figures['steady_ratio']:.3f} of the limit "
        f"({figures.get('steady_patents_per_s')} patents/s over {figures.get('steady_seconds')} s), "
        f"{figures['refused']} x 67200002; client CPU {figures['cpu_us_per_patent_window']} µs/patent in the "
        f"window ({figures.get('client_cores')} cores), {figures['cpu_us_per_patent_run']} over the run; "
        f"{sandbox_cpu_text(figures)}{server}",
        flush=True,
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qps", type=float, default=100.0)
    parser.add_argument("--latency", type=float, default=5.0)
    parser.add_argument("--send-seconds", type=float, default=30.0, help="about how long each run sends")
    parser.add_argument(
        "--runs",
        nargs="+",
        default=list(RUNS[:3]),
        choices=RUNS,
        help="client:destination, in this order",
    )
    parser.add_argument("--workdir")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="patsnap-task-"))
    workdir.mkdir(parents=True, exist_ok=True)
    count = int(args.send_seconds * args.qps * PATENTS_PER_CALL)
    results: dict[str, Any] = {
        "settings": {
            "qps": args.qps,
            "latency_s": args.latency,
            "send_seconds": args.send_seconds,
            "patents": count,
            "endpoint": "P026",
            "write_mode": "sync",
        },
        "runs": [],
    }
    with ExitStack() as stack:
        connections: dict[str, Any] = {}
        postgres_json, postgres_cpu = "", None
        if any(run.endswith(":postgres") for run in args.runs):
            from sql_write_paths import postgres_cluster

            postgres_json = stack.enter_context(postgres_cluster())
            connections[PG_CONN_ID] = postgres_json
            postmaster = server_on_port("postgres", json.loads(postgres_json)["port"])
            postgres_cpu = ProcessTreeCpu(postmaster) if postmaster is not None else None
        airflow_env(workdir, connections=connections, log_level="ERROR")
        from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator  # noqa: F401

        for index, name in enumerate(args.runs):
            client, destination = name.split(":")
            numbers = patent_numbers(count, start=index * count)
            run: Callable[[SandboxProcess, list[str]], dict[str, Any]]
            if client == "provider":
                run = partial(provider_run, destination, workdir=workdir)
            else:
                run = partial(
                    reference_run, destination, qps=args.qps, workdir=workdir, postgres=postgres_json
                )
            results["runs"].append(
                measure_run(client, destination, run, numbers, args, workdir, postgres_cpu, connections)
            )
    provider_pg = [
        run for run in results["runs"] if run["client"] == "provider" and run["destination"] == "postgres"
    ]
    ok = all(run["steady_ratio"] >= RATIO_TARGET for run in provider_pg) if provider_pg else None
    for run in provider_pg:
        print_check(
            f"one task at QPS {args.qps:g}, latency {args.latency:g} s, into PostgreSQL (sync)",
            run["steady_ratio"] >= RATIO_TARGET,
            f"{run['steady_ratio']:.3f} of the limit in steady state, {run['refused']} x 67200002, client CPU "
            f"{run['cpu_us_per_patent_window']} µs/patent ({run.get('client_cores')} cores); "
            f"{sandbox_cpu_text(run)}; PostgreSQL {run.get('postgres_cores')} cores; target >= {RATIO_TARGET}",
        )
    results["ok"] = ok
    if args.json:
        dump_json(args.json, results)
    return 0 if ok is not False else 1


if __name__ == "__main__":
    sys.exit(main())
