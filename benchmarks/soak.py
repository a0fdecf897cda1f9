"""Reliability soak: enrich patents into SQLite while the sandbox injects faults; lose nothing, leak nothing.

    python benchmarks/soak.py                   # 100,000 patents (make soak)
    python benchmarks/soak.py --patents 10000   # the CI size (a couple of minutes on 2 cores)

One sandbox process (``python -m airflow_provider_patsnap.sandbox``) serves four runs of a data operator
(default ``PatsnapLegalInformationOperator``, P026, the one with the most rows). Each run is a separate
Python process that calls ``op.execute(context={})`` into its own SQLite file, with a PatSnap connection
whose read ``timeout`` is 1 s, and with every log record (urllib3 DEBUG included) written, unmasked, to
a file next to what the process prints:

1. reference: fault rate 0.
2. faults:    fault rate 10 % over every kind (67200002, 67200100, 68300008, HTTP 500/502, dropped
              connections, responses slower than the read timeout) and every token expired once when
              half of the calls are done.
3. killed:    the same faults; SIGKILL when about 40 % of the calls are done.
4. rerun:     the same task again into the killed run's SQLite file.

Checks, one line each, exit status 1 if any fails: runs 2 and 4 hold exactly the reference's rows (same
``record_key`` set, same values in every column except ``fetched_at``, no key twice); their summaries'
counts equal the reference's; faults were injected and retried; the token expiry was survived with a
new token; and no log line of any run contains the client secret, the apikey (client id) or any token
issued to the runs.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (
    OPERATOR_NAMES,
    PATENTS_PER_CALL,
    SandboxProcess,
    airflow_env,
    operator_class,
    patent_numbers,
    print_check,
    sqlite_connection,
)

CONN_ID = "patsnap_soak"
WAREHOUSE_ID = "soak_warehouse"
TABLE = "soak_rows"
FAULT_KINDS = ("qps", "busy", "service", "http500", "http502", "drop", "slow")


# ----------------------------------------------------------------------------------------- the task


def run_task(args: argparse.Namespace) -> int:
    """The measured process: one operator run, its log records in ``--log`` and its summary in JSON."""
    from airflow_provider_patsnap.hooks.patsnap import PatsnapHook

    handler = logging.FileHandler(args.log, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(threadName)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("urllib3", "urllib3.connectionpool", "airflow", "airflow.task", "airflow_provider_patsnap"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    # The tokens the sandbox hands out are needed for the leak scan: record them beside the logs.
    fetch_token = PatsnapHook._fetch_token

    def recording_fetch_token(self: PatsnapHook) -> tuple[str, float]:
        token, ttl = fetch_token(self)
        with open(args.tokens, "a", encoding="utf-8") as out:
            out.write(token + "\n")
        return token, ttl

    PatsnapHook._fetch_token = recording_fetch_token  # type: ignore[method-assign]

    operator = operator_class(args.endpoint)(
        task_id="soak",
        patent_numbers=patent_numbers(args.patents),
        patsnap_conn_id=CONN_ID,
        sql_conn_id=WAREHOUSE_ID,
        table=TABLE,
    )
    started = time.perf_counter()
    summary = operator.execute(context={})
    summary["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.summary).write_text(json.dumps(summary), encoding="utf-8")
    return 0


# ----------------------------------------------------------------------------------------- the driver


class Run:
    """One task process and the files it leaves behind."""

    def __init__(self, workdir: Path, name: str, db: Path, sandbox: SandboxProcess, args: argparse.Namespace):
        self.name = name
        self.db = db
        self.log = workdir / f"{name}.log"
        self.out = workdir / f"{name}.out"
        self.tokens = workdir / f"{name}.tokens"
        self.summary_path = workdir / f"{name}.summary.json"
        for path in (self.log, self.out, self.tokens, self.summary_path):
            path.unlink(missing_ok=True)
        extra = {"qps": args.qps, "timeout": args.timeout}
        env = {
            **os.environ,
            **airflow_env(
                workdir,
                connections={CONN_ID: sandbox.connection(**extra), WAREHOUSE_ID: sqlite_connection(db)},
                apply=False,
                log_level="DEBUG",
            ),
        }
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--task",
            "--patents",
            str(args.patents),
            "--endpoint",
            args.endpoint,
            "--log",
            str(self.log),
            "--tokens",
            str(self.tokens),
            "--summary",
            str(self.summary_path),
        ]
        self._out = open(self.out, "wb")  # noqa: SIM115 - closed in wait()/kill()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(
                f"run {self.name!r} did not finish in {timeout:.0f} s (see {self.out})"
            ) from None
        finally:
            self._out.close()
            self.seconds = time.monotonic() - self.started

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._out.close()

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text(encoding="utf-8"))

    @property
    def issued_tokens(self) -> list[str]:
        if not self.tokens.exists():
            return []
        return [line for line in self.tokens.read_text(encoding="utf-8").splitlines() if line]


def business_calls(sandbox: SandboxProcess) -> int:
    return int(sandbox.stats()["business_calls"])


def wait_for_calls(run: Run, sandbox: SandboxProcess, target: int, timeout: float) -> int:
    """Poll the sandbox until ``target`` business calls were answered (or the run ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = business_calls(sandbox)
        if calls >= target or run.proc.poll() is not None:
            return calls
        time.sleep(0.1)
    raise RuntimeError(f"run {run.name!r}: {target} calls not reached in {timeout:.0f} s")


def compare(db: Path, reference: Path, columns: list[str], key_columns: list[str]) -> dict[str, int]:
    """Rows of ``db`` against the reference: counts, both differences, keys seen twice."""
    with sqlite3.connect(db) as conn:
        conn.execute("ATTACH DATABASE ? AS ref", (str(reference),))
        cols = ", ".join(columns)
        keys = ", ".join(key_columns)

        def one(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0])

        return {
            "rows": one(f"SELECT COUNT(*) FROM main.{TABLE}"),
            "reference_rows": one(f"SELECT COUNT(*) FROM ref.{TABLE}"),
            "distinct_keys": one(f"SELECT COUNT(DISTINCT record_key) FROM main.{TABLE}"),
            "natural_key_dupes": one(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM main.{TABLE} GROUP BY patent_id, {keys} HAVING COUNT(*) > 1)"
            ),
            "missing_keys": one(
                f"SELECT COUNT(*) FROM (SELECT record_key FROM ref.{TABLE} EXCEPT SELECT record_key FROM main.{TABLE})"
            ),
            "extra_keys": one(
                f"SELECT COUNT(*) FROM (SELECT record_key FROM main.{TABLE} EXCEPT SELECT record_key FROM ref.{TABLE})"
            ),
            "rows_differing": one(
                f"SELECT COUNT(*) FROM (SELECT {cols} FROM ref.{TABLE} EXCEPT SELECT {cols} FROM main.{TABLE})"
            )
            + one(
                f"SELECT COUNT(*) FROM (SELECT {cols} FROM main.{TABLE} EXCEPT SELECT {cols} FROM ref.{TABLE})"
            ),
        }


def is_exact_copy(diff: dict[str, int]) -> bool:
    """Every reference row once: same keys, same values, no natural key twice."""
    problems = ("missing_keys", "extra_keys", "rows_differing", "natural_key_dupes")
    return diff["rows"] == diff["reference_rows"] == diff["distinct_keys"] and not any(
        diff[name] for name in problems
    )


def rows_in(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=10) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])
    except sqlite3.Error:
        return 0


def scan_logs(paths: list[Path], needles: dict[str, list[str]]) -> tuple[int, int, dict[str, int]]:
    """Count log lines and the lines holding any value of each needle (secret, apikey, tokens)."""
    lines = 0
    hits = dict.fromkeys(needles, 0)
    encoded = {name: [value.encode("utf-8") for value in values if value] for name, values in needles.items()}
    for path in paths:
        if not path.exists():
            continue
        with path.open("rb") as handle:
            for line in handle:
                lines += 1
                for name, values in encoded.items():
                    if any(value in line for value in values):
                        hits[name] += 1
    return lines, sum(hits.values()), hits


def covering_seed(calls: int, rate: float, start: int = 20240501, tries: int = 10_000) -> int:
    """A seed whose first ``calls`` fault draws include every kind, so even the CI size meets them all.

    Mirrors the sandbox's ``FaultInjector.draw`` (``random.Random(seed)``: ``random() < rate``, then
    ``choice(kinds)``); every business call of the faults run draws once, retries included, so the
    first ``calls`` draws all fall into that run. The check counts what the sandbox actually injected.
    """
    import random

    for seed in range(start, start + tries):
        rng, seen = random.Random(seed), set()
        for _ in range(calls):
            if rng.random() < rate:
                seen.add(rng.choice(FAULT_KINDS))
        if len(seen) == len(FAULT_KINDS):
            return seed
    return start


def summary_counts(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: summary.get(key) for key in ("requested", "found", "missing", "billed_units", "rows")}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patents", type=int, default=100_000, help="patents per run (CI: 10000)")
    parser.add_argument(
        "--endpoint", choices=sorted(OPERATOR_NAMES), default="P026", help="data operator to run"
    )
    parser.add_argument("--qps", type=float, default=25.0, help="sandbox QPS limit = the connection's qps")
    parser.add_argument(
        "--latency", type=float, help="sandbox seconds per call (default 0.2; 0.05 below 50,000 patents)"
    )
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--timeout", type=float, default=1.0, help="the connection's read timeout (s)")
    parser.add_argument("--slow-seconds", type=float, default=2.0, help="how long a 'slow' fault stalls")
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the sandbox's fault generator (default: the first seed from 20240501 whose first "
        "draws cover every fault kind within one run's calls)",
    )
    parser.add_argument(
        "--kill-at", type=float, default=0.4, help="share of the calls after which to SIGKILL"
    )
    parser.add_argument("--workdir", help="keep the databases and logs here (default: a temp dir)")
    # the task process
    parser.add_argument("--task", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    parser.add_argument("--summary", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        return run_task(args)

    if args.latency is None:
        args.latency = 0.2 if args.patents >= 50_000 else 0.05
    seed_chosen = args.seed is None
    if seed_chosen:
        args.seed = covering_seed(math.ceil(args.patents / PATENTS_PER_CALL), args.fault_rate)
    if args.slow_seconds <= args.timeout:
        parser.error("--slow-seconds must exceed --timeout: a slow fault has to trip the read timeout")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="patsnap-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    expected_calls = math.ceil(args.patents / PATENTS_PER_CALL)
    # A run's calls, plus retries, at the QPS; faults add back-off and 1 s timeouts; Python start-up.
    run_budget = 120 + 4 * expected_calls / args.qps
    print(
        f"settings: {args.patents} patents ({expected_calls} calls) per run through {OPERATOR_NAMES[args.endpoint]} "
        f"into SQLite; sandbox latency {args.latency:g} s, QPS {args.qps:g}; faults {args.fault_rate:.0%} of "
        f"{','.join(FAULT_KINDS)} (seed {args.seed}), slow = {args.slow_seconds:g} s vs read timeout "
        f"{args.timeout:g} s; "
        f"workdir {workdir}",
        flush=True,
    )

    from airflow_provider_patsnap.endpoints import ENDPOINTS

    endpoint = ENDPOINTS[args.endpoint]
    compared_columns = [name for name in endpoint.column_names if name != "fetched_at"]
    results: list[bool] = []

    def check(name: str, ok: bool, detail: str) -> None:
        results.append(ok)
        print_check(name, ok, detail)

    def finished(run: Run, name: str, see: str = "") -> bool:
        """Wait for ``run``; a non-zero exit is a failed check named ``name``."""
        code = run.wait(run_budget)
        if code != 0:
            check(name, False, f"exit code {code}; see {run.out}{see}")
        return code == 0

    dbs = {name: workdir / f"{name}.db" for name in ("reference", "faults", "killed")}
    for db in dbs.values():
        db.unlink(missing_ok=True)
    runs: list[Run] = []
    started = time.monotonic()
    with SandboxProcess(
        "--latency",
        str(args.latency),
        "--qps",
        str(args.qps),
        "--fault-rate",
        "0",
        "--faults",
        ",".join(FAULT_KINDS),
        "--slow-seconds",
        str(args.slow_seconds),
        "--seed",
        str(args.seed),
        log_path=workdir / "sandbox.log",
    ) as sandbox:
        # 1. the fault-free reference
        reference = Run(workdir, "reference", dbs["reference"], sandbox, args)
        runs.append(reference)
        if not finished(reference, "reference run"):
            return 1
        ref = reference.summary
        check(
            "reference run (no faults)",
            ref["rows"] > 0 and ref["retries"] == 0,
            f"{ref['requested']} patents, {ref['found']} found, {ref['missing']} missing, {ref['rows']} rows, "
            f"{ref['calls']} calls, {ref['retries']} retries in {reference.seconds:.1f} s",
        )

        # 2. faults at 10 %, every token expired half-way
        sandbox.set_fault_rate(args.fault_rate)
        before = sandbox.stats()
        faulty = Run(workdir, "faults", dbs["faults"], sandbox, args)
        runs.append(faulty)
        calls_at_expiry = wait_for_calls(
            faulty, sandbox, int(before["business_calls"]) + expected_calls // 2, run_budget
        )
        expired = sandbox.expire_tokens().get("expired", 0)
        if not finished(faulty, "run under faults", f" and {faulty.log}"):
            return 1
        after = sandbox.stats()
        run_summary = faulty.summary
        faults = {kind: after["faults"].get(kind, 0) - before["faults"].get(kind, 0) for kind in FAULT_KINDS}
        total_faults = sum(faults.values())
        run_calls = int(after["business_calls"]) - int(before["business_calls"])
        all_kinds = all(faults.values())
        # The chosen seed draws every kind within the run's first calls; with a seed given on the command
        # line, only a large run (~15 faults of each kind expected) is sure to see them all.
        kinds_required = seed_chosen or args.patents >= 50_000
        check(
            "faults injected and retried",
            total_faults > 0 and run_summary["retries"] >= total_faults and (all_kinds or not kinds_required),
            f"{total_faults} faults in {run_calls} calls ({total_faults / max(run_calls, 1):.1%}): "
            + ", ".join(f"{kind} {count}" for kind, count in faults.items())
            + f"; {run_summary['retries']} retries by the hook; {faulty.seconds:.1f} s"
            + ("" if all_kinds else " (not every kind drawn at this size)"),
        )
        tokens = faulty.issued_tokens
        check(
            "token expiry survived",
            expired >= 1 and len(tokens) >= 2,
            f"{expired} token(s) expired after {calls_at_expiry - int(before['business_calls'])} calls; "
            f"the run fetched {len(tokens)} tokens in all; 67200003 answers: "
            f"{after['errors'].get('67200003', 0) - before['errors'].get('67200003', 0)}",
        )
        diff = compare(dbs["faults"], dbs["reference"], compared_columns, list(endpoint.key_columns))
        check(
            "every reference row exactly once (faults)",
            is_exact_copy(diff),
            f"{diff['rows']} rows vs {diff['reference_rows']} in the reference; {diff['distinct_keys']} distinct "
            f"record_key; missing {diff['missing_keys']}, extra {diff['extra_keys']}, differing (all columns but "
            f"fetched_at) {diff['rows_differing']}, natural key twice {diff['natural_key_dupes']}",
        )
        check(
            "summary counts agree (faults)",
            summary_counts(run_summary) == summary_counts(ref) and run_summary["rows"] == diff["rows"],
            f"{summary_counts(run_summary)} vs reference {summary_counts(ref)}; "
            f"sandbox billed {after['billed_units'] - before['billed_units']} units (slow answers past the "
            "timeout are billed but never received)",
        )

        # 3. SIGKILL part-way, then 4. rerun into the same database
        before = sandbox.stats()
        killed = Run(workdir, "killed", dbs["killed"], sandbox, args)
        runs.append(killed)
        calls_at_kill = wait_for_calls(
            killed, sandbox, int(before["business_calls"]) + int(expected_calls * args.kill_at), run_budget
        )
        finished_early = killed.proc.poll() is not None
        killed.kill()
        partial_rows = rows_in(dbs["killed"])
        check(
            "killed part-way",
            not finished_early and 0 < partial_rows < ref["rows"],
            f"SIGKILL after {calls_at_kill - int(before['business_calls'])} of ~{expected_calls} calls; "
            f"{partial_rows} of {ref['rows']} rows were committed",
        )
        rerun = Run(workdir, "rerun", dbs["killed"], sandbox, args)
        runs.append(rerun)
        if not finished(rerun, "rerun after kill"):
            return 1
        diff = compare(dbs["killed"], dbs["reference"], compared_columns, list(endpoint.key_columns))
        check(
            "every reference row exactly once (kill + rerun)",
            is_exact_copy(diff),
            f"{diff['rows']} rows vs {diff['reference_rows']}; missing {diff['missing_keys']}, extra "
            f"{diff['extra_keys']}, differing {diff['rows_differing']}, natural key twice "
            f"{diff['natural_key_dupes']}; rerun {rerun.seconds:.1f} s, {rerun.summary['retries']} retries",
        )
        check(
            "summary counts agree (rerun)",
            summary_counts(rerun.summary) == summary_counts(ref),
            f"{summary_counts(rerun.summary)} vs reference {summary_counts(ref)}",
        )

        # 5. no secret in any log line of any run
        issued = sorted({token for run in runs for token in run.issued_tokens})
        basic = base64.b64encode(f"{sandbox.client_id}:{sandbox.client_secret}".encode()).decode()
        needles = {
            "client secret": [sandbox.client_secret, basic],
            "apikey (client id)": [sandbox.client_id],
            "tokens": issued,
        }
        logs = [path for run in runs for path in (run.log, run.out)]
        lines, total_hits, hits = scan_logs(logs, needles)
        urllib3_lines = sum(
            1
            for path in logs
            if path.exists()
            for line in path.open("rb")
            if b"urllib3.connectionpool" in line
        )
        check(
            "no secret in the logs",
            total_hits == 0 and lines > 0 and len(issued) >= 2,
            f"{lines} lines in {len(logs)} files ({urllib3_lines} from urllib3 at DEBUG) scanned for the secret, "
            f"the apikey and {len(issued)} tokens: "
            + ", ".join(f"{name} {count}" for name, count in hits.items()),
        )

    failed = results.count(False)
    print(
        f"{'PASS' if not failed else 'FAIL'}  soak: {len(results) - failed} of {len(results)} checks passed in "
        f"{time.monotonic() - started:.0f} s (logs and databases in {workdir})",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
