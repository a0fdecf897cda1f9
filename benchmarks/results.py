"""Write benchmarks/RESULTS.md from the JSON files the benchmark scripts left in ``--dir``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine

Check = tuple[str, str, str, bool | None]


def load(directory: Path, name: str) -> dict[str, Any] | None:
    path = directory / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")


def cores(figures: dict[str, Any]) -> str:
    """The sandbox's cores (CPU / wall) over a figure's run, or '–' when it was not measured."""
    value = figures.get("sandbox_cores")
    return "–" if value is None else f"{value:.2f}"


def sandbox_cpu(figures: dict[str, Any]) -> str:
    """'sandbox 12.3 s CPU in 60.1 s = 0.20 cores', or '' when it was not measured."""
    if figures.get("sandbox_cores") is None:
        return ""
    return (
        f"sandbox {figures['sandbox_cpu_s']:g} s CPU in {figures['sandbox_wall_s']:g} s = "
        f"{figures['sandbox_cores']:.2f} cores"
    )


#: Goals of the project's issue 21 ("Scale out"): the provider against the asyncio references.
FETCH_RATIO_TARGET = 1.2
TASK_RATIO_TARGET = 0.95


def throughput_section(data: dict[str, Any]) -> tuple[list[str], list[Check]]:
    runs = data["runs"]
    naive = {run["latency"]: run for run in runs if run["client"] == "naive"}
    lines = [
        "## Throughput at the vendor's latency",
        "",
        "Steady-state rate (patents completed between the 10 % and 90 % marks) ÷ the physical limit "
        "`qps × 100` patents/s. Default settings: the connection says only `qps`. P026, about "
        f"{data['settings']['send_seconds']:g} s of calls per run; the naive loop makes "
        f"{data['settings']['naive_calls']} calls once per latency, and its ratio is its rate over each "
        "QPS's limit. Client CPU per patent over the same window (process CPU, all threads). The "
        "sandbox's CPU over each client's run, in cores (CPU ÷ wall): well below 1, it was not the limit.",
        "",
        "| latency (s) | QPS | provider | asyncio reference | naive loop | provider concurrency | "
        "CPU µs/patent: provider / asyncio | sandbox cores: provider / asyncio run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    checks: list[Check] = []
    for latency in data["settings"]["latency"]:
        for qps in data["settings"]["qps"]:
            # Each client's run with the lowest CPU when the configuration ran several times (other work
            # on the shared cores only ever adds CPU time); throughput is that run's too.
            found: dict[str, dict[str, Any]] = {}
            repeats = 0
            for r in runs:
                if r["latency"] == latency and r["qps"] == qps:
                    best = found.get(r["client"])
                    if best is None or r["cpu_us_per_patent_window"] < best["cpu_us_per_patent_window"]:
                        found[r["client"]] = r
                    repeats += r["client"] == "provider"
            provider, reference = found["provider"], found["asyncio"]
            slow = naive.get(latency)
            naive_ratio = slow["steady_patents_per_s"] / (qps * 100) if slow else None
            lines.append(
                f"| {latency} | {qps:g} | **{provider['steady_ratio']:.3f}** | {reference['steady_ratio']:.3f} | "
                f"{'–' if naive_ratio is None else f'{naive_ratio:.3f}'} | {provider['concurrency']} | "
                f"{provider['cpu_us_per_patent_window']} / {reference['cpu_us_per_patent_window']} | "
                f"{cores(provider)} / {cores(reference)} |"
            )
            checks.append(
                (
                    f"throughput, provider, latency {latency} s, QPS {qps:g}",
                    f"**{provider['steady_ratio']:.3f}** of the limit in steady state "
                    f"({provider['patents']:,} patents in {provider['seconds']} s; asyncio reference "
                    f"{reference['steady_ratio']:.3f}; {sandbox_cpu(provider) or 'sandbox CPU not measured'})",
                    ">= 0.95",
                    provider["steady_ratio"] >= 0.95,
                )
            )
            if qps == 50 and latency == "5":
                checks.append(
                    (
                        "fetch CPU at QPS 50, latency 5 s",
                        f"**{provider['cpu_us_per_patent_window']} µs/patent** in steady state "
                        f"({provider['cpu_us_per_patent_run']} over the whole run, ramp-up included), the "
                        f"lowest of {repeats} runs; asyncio reference {reference['cpu_us_per_patent_window']}",
                        "<= 30 µs",
                        provider["cpu_us_per_patent_window"] <= 30.0,
                    )
                )
                ratio = provider["cpu_us_per_patent_window"] / reference["cpu_us_per_patent_window"]
                checks.append(
                    (
                        "fetch CPU at QPS 50, latency 5 s, provider / asyncio anchor",
                        f"**{ratio:.2f}x** ({provider['cpu_us_per_patent_window']} / "
                        f"{reference['cpu_us_per_patent_window']} µs/patent, each client's lowest of "
                        f"{repeats} runs taken in turns)",
                        f"<= {FETCH_RATIO_TARGET:g}x",
                        ratio <= FETCH_RATIO_TARGET,
                    )
                )
    return [*lines, ""], checks


#: What the end-to-end reference (benchmarks/reference_client.py, ``asyncio_load``) does per destination.
REFERENCE_JOBS = {
    "postgres": "asyncio fetch, msgspec, the plainest flattening into the same rows, `COPY` into a stage "
    "table, the vanished rows deleted and one `INSERT ... SELECT ... ON CONFLICT` a write",
    "ndjson": "asyncio fetch, msgspec, the plainest flattening into the same rows, msgspec `encode_lines`",
}


def cpu_section(data: dict[str, Any]) -> tuple[list[str], list[Check]]:
    lines = [
        "## Client CPU per patent",
        "",
        f"{data['settings']['patents']:,} patents of P026 (legal events, about 3 rows a patent), sandbox "
        "latency 0 and no QPS limit, sandbox in its own process: the client's process CPU (user + system, "
        "every thread) per patent. Top entries of a profiled pass (own time per patent; cProfile inflates "
        "them and counts waits on I/O, so they rank, they do not add up).",
        "",
    ]
    checks: list[Check] = []
    for name, title in (
        ("fetch", "fetch (`PatsnapHook.lookup`)"),
        ("sqlite", "end to end into SQLite"),
        ("postgres", "end to end into PostgreSQL"),
        ("ndjson", "end to end into NDJSON files"),
    ):
        if name not in data:
            continue
        figures = data[name]
        beside = f"; in the same pass, {sandbox_cpu(figures)}" if sandbox_cpu(figures) else ""
        lines += [
            f"- **{title}: {figures['us_per_patent']} µs/patent** (target <= {figures['target_us']:g}){beside}; "
            "top entries:",
            "",
            "  ```",
            *(f"  {entry}" for entry in figures["top"]),
            "  ```",
        ]
        checks.append(
            (
                f"CPU per patent, {title}",
                f"**{figures['us_per_patent']} µs** ({figures['cpu_s']} s CPU for {figures['patents']:,} patents; "
                f"{sandbox_cpu(figures) or 'sandbox CPU not measured'})",
                f"<= {figures['target_us']:g} µs",
                figures["ok"],
            )
        )
        reference = figures.get("reference")
        if reference:
            lines.append(
                f"- the asyncio reference doing the same job ({REFERENCE_JOBS[name]}): "
                f"**{reference['us_per_patent']} µs/patent**, so the provider takes "
                f"**{figures['reference_ratio']}x** its CPU (lowest of passes taken in turns: provider "
                f"{figures['us_per_patent_passes']}, reference {reference['us_per_patent_passes']}; "
                f"{figures['rows']:,} and {reference['rows']:,} rows)"
            )
            checks.append(
                (
                    f"CPU per patent, {title}, provider / asyncio reference",
                    f"**{figures['reference_ratio']}x** ({figures['us_per_patent']} / {reference['us_per_patent']} "
                    "µs/patent, the lowest of each's passes taken in turns)",
                    f"<= {figures['reference_ratio_target']:g}x",
                    figures["reference_ok"],
                )
            )
    overhead = data.get("observability")
    if overhead:
        lines.append(
            f"- **metrics and progress lines** (NDJSON, Airflow's StatsD client on): {overhead['on_us']} µs/patent "
            f"with them, {overhead['off_us']} without, side by side: {overhead['ratio']}x"
        )
        checks.append(
            (
                "metrics and progress lines, NDJSON",
                f"**{overhead['ratio']}x** ({overhead['on_us']} vs {overhead['off_us']} µs/patent)",
                "<= 1.03x",
                overhead["ok"],
            )
        )
    return [*lines, ""], checks


def task_section(data: dict[str, Any]) -> tuple[list[str], list[Check]]:
    settings = data["settings"]
    qps, latency = settings["qps"], settings["latency_s"]
    lines = [
        f"## One task at QPS {qps:g}",
        "",
        f"One data task, `PatsnapLegalInformationOperator(...).execute(context={{}})` with default settings "
        f"(the connection's `qps` is the sandbox's), against the sandbox at QPS {qps:g} (it refuses a call "
        f"beyond that with 67200002), every call taking {latency:g} s: {settings['patents']:,} patents of "
        f"P026 (about {settings['send_seconds']:g} s of calls) into PostgreSQL (`sync`, a throwaway cluster) "
        "or an NDJSON file, a fresh sandbox each run (`benchmarks/task_throughput.py`). Beside it, the asyncio "
        "reference doing the same job (`reference_client.asyncio_load`): a rate both miss is the machine's. "
        "Counted from the sandbox's own arrival stamps: the steady state is the window between the arrivals "
        "carrying the 10 % and 90 % marks of the patents answered, its rate over the limit "
        f"`qps × 100` = {qps * 100:,.0f} patents/s the figure. CPU over the same window, shifted by the "
        "latency (when those calls' answers were mapped and written): the client process's per patent and "
        "in cores, the sandbox's and the PostgreSQL server's in cores.",
        "",
        "| client | destination | of the limit | 67200002 | client µs/patent | client cores | sandbox cores "
        "| PostgreSQL cores (µs/patent) | wall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    checks: list[Check] = []
    for run in data["runs"]:
        server = (
            f"{run['postgres_cores']:.2f} ({run['postgres_us_per_patent']})"
            if run.get("postgres_cores") is not None
            else "–"
        )
        client = "**provider**" if run["client"] == "provider" else "asyncio reference"
        lines.append(
            f"| {client} | {run['destination']} | **{run['steady_ratio']:.3f}** | {run['refused']} | "
            f"{run['cpu_us_per_patent_window']} | {run.get('client_cores', '–')} | {cores(run)} | {server} | "
            f"{run['seconds']} s |"
        )
        if run["client"] == "provider" and run["destination"] == "postgres":
            reference = next(
                (r for r in data["runs"] if r["client"] == "reference" and r["destination"] == "postgres"),
                None,
            )
            beside = f"; asyncio reference {reference['steady_ratio']:.3f}" if reference else ""
            checks.append(
                (
                    f"one task at QPS {qps:g}, latency {latency:g} s, into PostgreSQL (`sync`)",
                    f"**{run['steady_ratio']:.3f}** of the limit in steady state ({run['refused']} × 67200002; "
                    f"client {run['cpu_us_per_patent_window']} µs/patent = {run.get('client_cores')} cores; "
                    f"{sandbox_cpu(run) or 'sandbox CPU not measured'}; PostgreSQL {server} cores{beside})",
                    f">= {TASK_RATIO_TARGET}",
                    run["steady_ratio"] >= TASK_RATIO_TARGET,
                )
            )
    return [*lines, ""], checks


#: Goal of the project's issue 11: the PostgreSQL bulk path against what release 0.1 did.
PG_BULK_TARGET = 4.0


def sql_check(data: dict[str, Any]) -> Check | None:
    ratios = data.get("bench_pg")
    if not ratios:
        return None
    return (
        f"PostgreSQL bulk path (`SqlSink`: COPY + one upsert a write) over 0.1's `insert_rows`, {data['rows']:,} rows",
        f"**{ratios['insert']:.1f}x** new rows/s ({ratios['rerun']:.1f}x on the rerun's upsert of the same rows)",
        f">= {PG_BULK_TARGET:g}x",
        ratios["insert"] >= PG_BULK_TARGET,
    )


def sql_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "## SQL write paths",
        "",
        f"{data['rows']:,} generated P026 rows, then the same rows again (a rerun's upsert); rows/s, the best "
        "of the turns the two paths took one after the other (`benchmarks/sql_write_paths.py`). `insert_rows`: release 0.1's path, a connection and an "
        "`insert_rows` per batch of 600 rows. `SqlSink`: one connection, a write of the 16 batches that wait "
        "for it when the destination is the bottleneck (what the operators hand over), sorted rows, on "
        "PostgreSQL `COPY` into a stage table and one upsert.",
        "",
        "| database | path | new rows/s | rerun rows/s |",
        "|---|---|---|---|",
    ]
    for conn_id, title in (("bench_pg", "PostgreSQL"), ("bench_sqlite", "SQLite")):
        figures = data.get(f"{conn_id}_rows_per_s")
        if not figures:
            continue
        for path, label in (("insert_rows", "`hook.insert_rows` per batch"), ("sqlsink", "`SqlSink`")):
            rate = figures[path]
            lines.append(f"| {title} | {label} | {rate['insert']:,.0f} | {rate['rerun']:,.0f} |")
    return [*lines, ""]


def capacity_check(data: dict[str, Any]) -> Check:
    return (
        f"sandbox capacity: QPS {data['qps']:g} × {data['patents_per_call']} patents, latency "
        f"{data['latency_s']:g} s, calls evenly spaced (±{data['jitter_ms']:g} ms)",
        f"**{data['steady_ratio']:.3f}** of the limit in steady state, **{data['refused']}** refused "
        f"(67200002) of {data['calls_sent']:,} calls, **{data['sandbox_cores']:.2f} cores** "
        f"({data['sandbox_cpu_s']:g} s CPU in {data['sandbox_wall_s']:g} s); answers p99 "
        f"{data['answer_s_p99']} s",
        f">= {data['ratio_target']}, 0 refused, <= {data['cores_target']} core",
        data["ok"],
    )


def render(directory: Path, seconds: int) -> tuple[str, bool]:
    info = machine()
    throughput, task, cpu, sql, memory, imports, capacity = (
        load(directory, name) for name in ("throughput", "task", "cpu", "sql", "memory", "import", "capacity")
    )
    checks: list[Check] = []
    sections: list[str] = []
    if capacity:
        checks.append(capacity_check(capacity))
    if throughput:
        text, found = throughput_section(throughput)
        sections += text
        checks += found
    if task:
        text, found = task_section(task)
        sections += text
        checks += found
    if cpu:
        text, found = cpu_section(cpu)
        sections += text
        checks += found
    if sql:
        sections += sql_section(sql)
        check = sql_check(sql)
        if check:
            checks.append(check)
    if memory:
        checks.append(
            (
                f"peak RSS streaming {memory['patents']:,} patents into SQLite",
                f"**{memory['peak_rss_mb']} MB** ({memory['rows']:,} rows, {memory['seconds']} s at latency "
                f"{memory['latency_s']:g} s / QPS {memory['qps']:g}); {memory['rss_before_run_mb']} MB before the "
                f"run, {memory['rss_at_25pct_mb']} MB at 25 %, growth after that "
                f"{memory['growth_after_25pct_mb']:+} MB"
                + (f"; {sandbox_cpu(memory)}" if sandbox_cpu(memory) else ""),
                f"< {memory['target_mb']:g} MB, flat",
                memory["ok"],
            )
        )
    if imports:
        checks.append(
            (
                "import cost of `airflow_provider_patsnap.operators.patsnap`",
                f"**+{imports['extra_ms']} ms** over `import airflow` (best of {imports['runs']} fresh "
                f"interpreters; median {imports['extra_median_ms']} ms; `import airflow` itself "
                f"{imports['import_airflow_ms']:.0f} ms); +{imports['extra_over_dag_import_ms']} ms over a DAG "
                "file's own `from airflow.sdk import DAG`",
                f"<= {imports['target_ms']:g} ms",
                imports["ok"],
            )
        )
    all_ok = bool(checks) and all(ok is not False for *_, ok in checks)
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`bash benchmarks/run.sh`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
        f"{seconds} s. Overall: {verdict(all_ok)}.",
        "",
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['ram_gb']} GB RAM, {info['os']}; Python "
        f"{info['python']}; Airflow {info['airflow']}. The cores are shared with other work (load average "
        f"over the last 15 minutes when this was written: {os.getloadavg()[2]:.1f}), so CPU figures vary by "
        "up to 40 % from run to run of the same code; the throughput ratios do not.",
        "",
        "Everything runs over loopback against the sandbox (`python -m airflow_provider_patsnap.sandbox`) in "
        "its own process, so its CPU is not charged to the client; each figure gives the sandbox's own CPU "
        "beside it (seconds, and cores = CPU ÷ wall), and the first line checks that the sandbox alone "
        "serves the highest rate measured (`benchmarks/sandbox_capacity.py`), so it is never the limit.",
        "",
        "| goal | measured | target | result |",
        "|---|---|---|---|",
        *(f"| {name} | {figures} | {target} | {verdict(ok)} |" for name, figures, target, ok in checks),
        "",
        *sections,
        "## Notes",
        "",
        "- A steady-state ratio a little above 1.000 is real, not an error: with latencies drawn between 5 and "
        "10 s, answers come back out of order, and the 10 %–90 % window can catch a stretch where they "
        "bunch; over the whole run nobody beats the limit.",
        "- The asyncio reference is benchmarks/reference_client.py: standard-library asyncio streams, keep-alive "
        "HTTP/1.1, calls on a fixed schedule 1/qps apart, every body parsed by the provider's decoder (msgspec), "
        "and nothing else (no retries, deadline, token renewal or scrubbing). It is a floor for CPU, not a "
        "product; its CPU per patent is its whole run's, which has no ramp-up to speak of.",
        "- The end-to-end reference (`asyncio_load`, same file) adds the plainest flattening of each body into "
        "the rows `map_patent` gives (checked equal on a sample of 1,000 patents before the CPU passes; none of "
        "the provider's checks of shapes, dates or text), and lands them from the same event loop: psycopg's "
        "asyncio `COPY` (`write_row`) into a stage table, the vanished rows deleted and one upsert a write "
        "(16 batches at most, as the operators), or msgspec `encode_lines` into a file. It keeps no "
        "`<table>_state`, run record or rejects table.",
        "- The naive loop is a token and then one `requests.get` after another: 100 patents per latency.",
        "",
        "Reproduce: `make bench` (QPS 10 and 50; one task at QPS 100); `make bench-full` adds QPS 20 and 100 to "
        "the throughput runs and the reference into NDJSON to the QPS-100 task runs. The fault-injection "
        "soak is `make soak` (see docs/performance.md).",
        "",
    ]
    return "\n".join(lines), all_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True, help="directory holding the benchmarks' .json files")
    parser.add_argument("--seconds", type=int, default=0, help="how long the whole run took")
    parser.add_argument("--output", default="benchmarks/RESULTS.md")
    args = parser.parse_args()
    text, ok = render(Path(args.dir), args.seconds)
    Path(args.output).write_text(text, encoding="utf-8")
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
