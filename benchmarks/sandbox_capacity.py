"""Sandbox capacity: can the emulator serve ``qps x 100`` patents/s at the vendor's latency by itself?

The benchmarks drive the sandbox at up to QPS 100, latency 5 s, 100 patents a call: 10,000 patents/s and
about 500 calls in flight on as many keep-alive connections. If the sandbox cannot keep up, it (not the
client under test) sets the figure, and a client that is right gets 67200002 answers it did not earn.

This runs the sandbox CLI in its own process at ``--latency`` with a server-side ``--qps`` and drives it
with a minimal client: one asyncio event loop, raw keep-alive HTTP/1.1 streams, the ``sk-`` key model (no
token step), no JSON parsing of successful bodies. Call ``i`` is sent at ``t0 + i / qps`` plus a uniform
``±--jitter-ms``, like a client that spaces its calls evenly at exactly the limit and meets the
scheduling noise of a real host; each call asks P026 for 100 patent numbers no call asked before (the
sandbox's caches never help). The run sends for ``--send-seconds``, then waits for the last answers.

Figures: calls answered, 67200002 answers, other errors and timeouts; the rate of successful answers
between the 10 % and 90 % marks over ``qps`` (the steady state), and successful calls over calls sent;
answer times (from the request written to the answer read); the sandbox process's CPU (user + system from
/proc, every thread) over the run, in seconds and in cores (CPU / wall), and what the sandbox counts for
its own request handling (``/_sandbox/stats`` ``cpu_seconds``).

    python benchmarks/sandbox_capacity.py [--qps 100] [--latency 5] [--send-seconds 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (
    PATENTS_PER_CALL,
    SandboxProcess,
    dump_json,
    patent_numbers,
    print_check,
    sandbox_cpu_text,
)

PATH = "/advanced-patent-data/legal-data"
RATIO_TARGET = 0.98
CORES_TARGET = 0.5
REFUSED = 67200002


class Tally:
    """Every call's outcome: when it was sent and answered, and how."""

    def __init__(self) -> None:
        self.ok: list[float] = []  # answer times (seconds since t0) of successful calls
        self.answer_seconds: list[float] = []  # request written -> answer read, every answered call
        self.errors: dict[str, int] = {}
        self.timeouts = 0
        self.connections = 0

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes, bool]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, close = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    return status, await reader.readexactly(length), close


async def drive(
    base_url: str, api_key: str, *, qps: float, send_seconds: float, jitter_ms: float, timeout: float
) -> tuple[Tally, float, int]:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = f"Host: {parts.netloc}\r\nAuthorization: Bearer {api_key}\r\n\r\n"
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    tally = Tally()
    calls = int(send_seconds * qps)
    rng = random.Random(0)
    loop = asyncio.get_running_loop()

    async def call(index: int, t0: float) -> None:
        numbers = patent_numbers(PATENTS_PER_CALL, start=index * PATENTS_PER_CALL)
        request = f"GET {PATH}?apikey={api_key}&patent_number={','.join(numbers)} HTTP/1.1\r\n{head}"
        if idle:
            connection = idle.pop()
        else:
            connection = await asyncio.open_connection(host, port)
            tally.connections += 1
        sent = loop.time()
        try:
            status, body, close = await asyncio.wait_for(
                _exchange(*connection, request.encode("ascii")), timeout
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
            if isinstance(error, TimeoutError):
                tally.timeouts += 1
            else:
                tally.error(type(error).__name__)
            connection[1].close()
            return
        answered = loop.time()
        tally.answer_seconds.append(answered - sent)
        if status == 200 and body.startswith(b'{"data":['):
            tally.ok.append(answered - t0)
        else:
            try:
                code = json.loads(body)["error_code"]
            except (ValueError, KeyError, TypeError):
                code = f"HTTP {status}"
            tally.error(str(code))
        if close:
            connection[1].close()
        else:
            idle.append(connection)

    tasks = []
    t0 = loop.time()
    for index in range(calls):
        target = t0 + index / qps + rng.uniform(-jitter_ms, jitter_ms) / 1000
        delay = target - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(call(index, t0)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return tally, loop.time() - t0, calls


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def steady_rate(stamps: list[float]) -> float:
    """Successful answers per second between the 10 % and 90 % marks."""
    stamps = sorted(stamps)
    if len(stamps) < 10:
        return float("nan")
    low, high = int(0.1 * len(stamps)), int(0.9 * len(stamps))
    span = stamps[high] - stamps[low]
    return (high - low) / span if span > 0 else float("nan")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    flags = ["--latency", str(args.latency), "--qps", str(args.qps)]
    with SandboxProcess(*flags) as sandbox:
        stats_before, window = sandbox.stats(), sandbox.cpu_window()
        tally, seconds, calls = asyncio.run(
            drive(
                sandbox.base_url,
                sandbox.api_key,
                qps=args.qps,
                send_seconds=args.send_seconds,
                jitter_ms=args.jitter_ms,
                timeout=args.latency + args.timeout_margin,
            )
        )
        cpu, stats_after, rss = window.stop(), sandbox.stats(), sandbox.rss_mb()
    # A sandbox from before it counted its own CPU has no cpu_seconds: nan says so.
    counted = stats_after.get("cpu_seconds", math.nan) - stats_before.get("cpu_seconds", math.nan)
    steady = steady_rate(tally.ok)
    return {
        "qps": args.qps,
        "latency_s": args.latency,
        "patents_per_call": PATENTS_PER_CALL,
        "jitter_ms": args.jitter_ms,
        "send_seconds": args.send_seconds,
        "calls_sent": calls,
        "calls_answered": len(tally.answer_seconds),
        "calls_ok": len(tally.ok),
        "refused": tally.errors.get(str(REFUSED), 0),
        "errors": tally.errors,
        "timeouts": tally.timeouts,
        "connections": tally.connections,
        "seconds": round(seconds, 1),
        "steady_ratio": round(steady / args.qps, 3),
        "ok_ratio": round(len(tally.ok) / calls, 3),
        "answer_s_p50": round(percentile(tally.answer_seconds, 0.5), 3),
        "answer_s_p99": round(percentile(tally.answer_seconds, 0.99), 3),
        "answer_s_max": round(max(tally.answer_seconds, default=float("nan")), 3),
        "max_in_flight": stats_after.get("max_in_flight"),
        **cpu,
        "sandbox_counted_cpu_s": round(counted, 2),
        "sandbox_rss_mb": rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qps", type=float, default=100.0)
    parser.add_argument("--latency", type=float, default=5.0)
    parser.add_argument("--send-seconds", type=float, default=60.0)
    parser.add_argument("--jitter-ms", type=float, default=2.0, help="uniform ± on each send time")
    parser.add_argument(
        "--timeout-margin", type=float, default=5.0, help="a call times out at latency + this"
    )
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()

    result = measure(args)
    ok = (
        result["steady_ratio"] >= RATIO_TARGET
        and result["ok_ratio"] >= RATIO_TARGET
        and result["refused"] == 0
        and result["sandbox_cores"] is not None
        and result["sandbox_cores"] <= CORES_TARGET
    )
    result.update(ratio_target=RATIO_TARGET, cores_target=CORES_TARGET, ok=ok)
    print(
        f"      {result['calls_sent']:,} calls sent at {args.qps:g}/s (±{args.jitter_ms:g} ms), "
        f"{result['calls_answered']:,} answered ({result['calls_ok']:,} ok), {result['refused']} × 67200002, "
        f"other errors {result['errors']}, {result['timeouts']} timeouts, {result['connections']} connections; "
        f"answer time p50 {result['answer_s_p50']} s, p99 {result['answer_s_p99']} s, max "
        f"{result['answer_s_max']} s",
        flush=True,
    )
    print_check(
        f"sandbox capacity at QPS {args.qps:g}, latency {args.latency:g} s, {PATENTS_PER_CALL} patents a call",
        ok,
        f"{result['steady_ratio']:.3f} of the limit in steady state, {result['ok_ratio']:.3f} of the calls sent "
        f"answered ok, {result['refused']} refused (67200002); {sandbox_cpu_text(result)} (its own count: "
        f"{result['sandbox_counted_cpu_s']} s; RSS {result['sandbox_rss_mb']} MB at the end); targets >= "
        f"{RATIO_TARGET}, 0 refused, <= {CORES_TARGET} core",
    )
    if args.json:
        dump_json(args.json, result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
