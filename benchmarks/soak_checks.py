"""What the soak checks: rows against the reference run's, and log lines against the secrets."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FAULT_KINDS = ("qps", "busy", "service", "http500", "http502", "drop", "slow")
FIRST_SEED = 20240501


def compare(
    conn: Any, table: str, reference: str, columns: Sequence[str], key_columns: Sequence[str]
) -> dict[str, int]:
    """Rows of ``table`` against ``reference`` (both reachable through ``conn``, a DB-API connection).

    Counts, keys on one side only, rows differing in any of ``columns``, natural keys seen twice.
    SQLite and PostgreSQL alike: set operations treat NULLs as equal.
    """
    cols = ", ".join(columns)
    keys = ", ".join(key_columns)

    def one(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    def only_in(left: str, right: str, what: str) -> int:
        return one(f"SELECT COUNT(*) FROM (SELECT {what} FROM {left} EXCEPT SELECT {what} FROM {right}) AS d")

    return {
        "rows": one(f"SELECT COUNT(*) FROM {table}"),
        "reference_rows": one(f"SELECT COUNT(*) FROM {reference}"),
        "distinct_keys": one(f"SELECT COUNT(DISTINCT record_key) FROM {table}"),
        "natural_key_dupes": one(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} GROUP BY patent_id, {keys} HAVING COUNT(*) > 1) AS d"
        ),
        "missing_keys": only_in(reference, table, "record_key"),
        "extra_keys": only_in(table, reference, "record_key"),
        "rows_differing": only_in(reference, table, cols) + only_in(table, reference, cols),
        "rows_not_in_reference": only_in(table, reference, cols),
    }


def compare_sqlite(
    db: Path, reference: Path, table: str, columns: Sequence[str], keys: Sequence[str]
) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        conn.execute("ATTACH DATABASE ? AS ref", (str(reference),))
        return compare(conn, f"main.{table}", f"ref.{table}", columns, keys)


def is_exact_copy(diff: dict[str, int]) -> bool:
    """Every reference row once: same keys, same values, no natural key twice."""
    return diff["rows"] == diff["reference_rows"] == diff["distinct_keys"] and not any(
        diff[name] for name in ("missing_keys", "extra_keys", "rows_differing", "natural_key_dupes")
    )


def is_clean_part(diff: dict[str, int]) -> bool:
    """Some of the reference rows, each once and right: what a stopped run may leave."""
    return diff["rows"] == diff["distinct_keys"] and not any(
        diff[name] for name in ("extra_keys", "rows_not_in_reference", "natural_key_dupes")
    )


def describe(diff: dict[str, int]) -> str:
    return (
        f"{diff['rows']} rows vs {diff['reference_rows']} in the reference; {diff['distinct_keys']} distinct "
        f"record_key; missing {diff['missing_keys']}, extra {diff['extra_keys']}, differing (all columns but "
        f"fetched_at) {diff['rows_differing']}, natural key twice {diff['natural_key_dupes']}"
    )


def sqlite_rows(db: Path, table: str) -> int:
    try:
        with sqlite3.connect(db, timeout=10) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.Error:
        return 0


def summary_counts(summary: dict[str, Any]) -> dict[str, Any]:
    return {key: summary.get(key) for key in ("requested", "found", "missing", "billed_units", "rows")}


def scan_logs(paths: Sequence[Path], needles: dict[str, list[str]]) -> tuple[int, int, dict[str, int]]:
    """Count log lines and the lines holding any value of each needle (secret, apikey, tokens, links)."""
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


def count_lines_with(paths: Sequence[Path], marker: bytes) -> int:
    total = 0
    for path in paths:
        if path.exists():
            with path.open("rb") as handle:
                total += sum(1 for line in handle if marker in line)
    return total


def covering_seed(calls: int, rate: float, start: int = FIRST_SEED, tries: int = 10_000) -> int | None:
    """A seed whose first ``calls`` fault draws include every kind, so even the CI size meets them all.

    Mirrors the sandbox's ``FaultInjector.draw`` (``random.Random(seed)``: ``random() < rate``, then
    ``choice(kinds)``); every business call of the faults run draws once, retries included, so the
    first ``calls`` draws all fall into that run. The check counts what the sandbox actually injected.
    None when no seed tried covers them (a run too small).
    """
    for seed in range(start, start + tries):
        rng, seen = random.Random(seed), set()
        for _ in range(calls):
            if rng.random() < rate:
                seen.add(rng.choice(FAULT_KINDS))
        if len(seen) == len(FAULT_KINDS):
            return seed
    return None
