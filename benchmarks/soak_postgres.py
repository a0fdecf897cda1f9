"""The soak's PostgreSQL runs: shards writing one fresh table at once, a SIGTERM mid-run and its rerun.

Rows are checked against the reference run's, copied from its SQLite file into ``soak_reference``
with the endpoint's own column types, so the comparison is one set of queries on the server.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from typing import Any

from soak_checks import compare, describe, is_clean_part, is_exact_copy
from soak_runs import Run, Soak

PG_ID = "soak_pg"
REFERENCE_TABLE = "soak_reference"
SHARDS_TABLE = "soak_shards"
SIGTERM_TABLE = "soak_sigterm"
SECONDS_TO_STOP = 5.0  # "within a few seconds" of SIGTERM, Python's own exit included
# A request the task wrote just before on_kill may be read by the sandbox (another process, on a busy
# 2-core box) a little later: reads this soon after on_kill returned count as in transit, not as calls
# made after the signal. A task that kept going would call again only after a batch, a back-off or a
# rate-limit slot: far later, and many times.
TRANSIT_SECONDS = 0.05


def connect(pg: dict[str, Any]) -> Any:
    import psycopg

    return psycopg.connect(
        host=pg["host"], port=pg["port"], user=pg["login"], dbname=pg["schema"], autocommit=True
    )


def load_reference(soak: Soak, pg: dict[str, Any]) -> None:
    """The reference run's rows (all columns but ``fetched_at``) into ``soak_reference``."""
    types = {column.name: column.sql_type for column in soak.endpoint.columns}
    cols = ", ".join(soak.compared)
    with sqlite3.connect(soak.reference_db) as source, connect(pg) as target:
        body = ", ".join(f"{name} {types[name]}" for name in soak.compared)
        target.execute(f"CREATE TABLE {REFERENCE_TABLE} ({body})")
        with target.cursor().copy(f"COPY {REFERENCE_TABLE} ({cols}) FROM STDIN") as copy:
            for row in source.execute(f"SELECT {cols} FROM soak_rows"):
                copy.write_row(row)


def pg_rows(pg: dict[str, Any], table: str) -> int:
    with connect(pg) as conn:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]) if exists else 0


def compare_pg(soak: Soak, pg: dict[str, Any], table: str) -> dict[str, int]:
    with connect(pg) as conn:
        return compare(conn, table, REFERENCE_TABLE, soak.compared, soak.key_columns)


def pg_run(
    soak: Soak,
    name: str,
    pg: dict[str, Any],
    table: str,
    ranges: list[tuple[int, int]],
    qps: float,
    gate: str = "",
    **options: Any,
) -> Run:
    """A data task into ``table`` of the cluster; ``options``: more of its TaskSpec (``write_mode``,
    ``refresh_after``, ``clock_offset``)."""
    return Run(
        soak,
        name,
        "data",
        pg,
        qps,
        endpoint=soak.args.endpoint,
        id_ranges=ranges,
        sql_conn_id=PG_ID,
        table=table,
        gate=gate,
        **options,
    )


def shard_ranges(patents: int, shards: int, overlap: float) -> list[list[tuple[int, int]]]:
    """Each shard's slice, preceded by the first ``overlap`` of its neighbour's: two shards write those
    ids at about the same moment, since the neighbour starts with them too."""
    size = -(-patents // shards)
    ranges = []
    for index in range(shards):
        own = (index * size, min(size, patents - index * size))
        neighbour = ((index + 1) % shards) * size
        ranges.append([(neighbour, min(int(size * overlap), patents - neighbour)), own])
    return ranges


def shards(soak: Soak, pg: dict[str, Any]) -> None:
    """N processes started together, one fresh table, overlapping ids, faults on: every row once."""
    args = soak.args
    before = soak.stats()
    gate = soak.workdir / "shards.go"
    gate.unlink(missing_ok=True)
    runs = [
        pg_run(soak, f"shard{index}", pg, SHARDS_TABLE, ranges, args.qps / args.shards, str(gate))
        for index, ranges in enumerate(shard_ranges(args.patents, args.shards, args.overlap))
    ]
    released = soak.release_together(runs, gate)
    if not all([soak.finished(run, f"shard {run.name}") for run in runs]) or not released:
        return
    after = soak.stats()
    summaries = [run.summary for run in runs]
    together = max(s["started_at"] for s in summaries) < min(s["ended_at"] for s in summaries)
    faults = sum(after["faults"].values()) - sum(before["faults"].values())
    requested = sum(s["requested"] for s in summaries)
    soak.check(
        f"{args.shards} shards at once",
        together and faults > 0,
        f"{args.shards} processes in execute() together (started within "
        f"{max(s['started_at'] for s in summaries) - min(s['started_at'] for s in summaries):.2f} s; the "
        "last started before the first ended), "
        f"{requested} ids for {args.patents} patents ({requested - args.patents} asked by two shards), "
        f"{faults} faults, {sum(s['retries'] for s in summaries)} call retries, "
        f"{sum(s['write_retries'] for s in summaries)} write retries, longest shard "
        f"{max(run.seconds for run in runs):.1f} s",
    )
    diff = compare_pg(soak, pg, SHARDS_TABLE)
    soak.check("every reference row exactly once (shards, PostgreSQL)", is_exact_copy(diff), describe(diff))


def sigterm_and_rerun(soak: Soak, pg: dict[str, Any]) -> None:
    """SIGTERM part-way: stop within seconds, no call after it, rows kept; the rerun completes them."""
    args = soak.args
    before = soak.stats()
    run = pg_run(soak, "sigterm", pg, SIGTERM_TABLE, [(0, args.patents)], args.qps)
    calls_at_signal = soak.wait_for_calls(
        run, int(before["business_calls"]) + int(soak.expected_calls * args.kill_at)
    )
    finished_early = run.proc.poll() is not None
    rows_at_signal = pg_rows(pg, SIGTERM_TABLE)
    cursor = soak.ledger_cursor()
    sent_at = run.signal(signal.SIGTERM)
    code = run.wait(soak.run_budget)
    stop_seconds = time.time() - sent_at
    soak.wait_until_idle()
    stopped_at = run.on_kill_returned or sent_at
    after_signal = [record for record in soak.requests_since(cursor) if record["wall"] > sent_at]
    late = [record for record in after_signal if record["wall"] > stopped_at + TRANSIT_SECONDS]
    summary = run.summary
    soak.check(
        "SIGTERM stops the run",
        not finished_early
        and code != 0
        and stop_seconds < SECONDS_TO_STOP
        and run.on_kill_returned is not None
        and summary.get("error_type") == "PatsnapCancelledError",
        f"SIGTERM after {calls_at_signal - int(before['business_calls'])} of ~{soak.expected_calls} calls; "
        f"on_kill returned {_after(run.on_kill_returned, sent_at)}; exit code {code} after {stop_seconds:.2f} s "
        f"(limit {SECONDS_TO_STOP:g} s); execute raised {summary.get('error_type')}: "
        f"{summary.get('error', '')[:120]}",
    )
    soak.check(
        "no call after SIGTERM",
        not late,
        f"{len(late)} requests read by the sandbox later than {TRANSIT_SECONDS * 1000:g} ms after on_kill "
        f"returned, {len(after_signal) - len(late)} in transit (read between the signal and then)"
        + (f": {[(r['path'], round(r['wall'] - sent_at, 3)) for r in late[:5]]}" if late else ""),
    )
    diff = compare_pg(soak, pg, SIGTERM_TABLE)
    soak.check(
        "SIGTERM keeps what was written",
        0 < rows_at_signal <= diff["rows"] < diff["reference_rows"] and is_clean_part(diff),
        f"{rows_at_signal} rows committed at the signal, {diff['rows']} after the exit ({diff['distinct_keys']} "
        f"distinct record_key), of {diff['reference_rows']} in the reference: not a reference row "
        f"{diff['rows_not_in_reference']}, natural key twice {diff['natural_key_dupes']}",
    )
    rerun = pg_run(soak, "sigterm-rerun", pg, SIGTERM_TABLE, [(0, args.patents)], args.qps)
    if not soak.finished(rerun, "rerun after SIGTERM"):
        return
    diff = compare_pg(soak, pg, SIGTERM_TABLE)
    soak.check(
        "every reference row exactly once (SIGTERM + rerun, PostgreSQL)",
        is_exact_copy(diff),
        f"{describe(diff)}; rerun {rerun.seconds:.1f} s",
    )


def _after(moment: float | None, origin: float) -> str:
    return "never" if moment is None else f"{moment - origin:.3f} s after the signal"
