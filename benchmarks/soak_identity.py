"""The soak's two spellings of one PostgreSQL table: two shards started together write it as
``soak_spelled_<mode>`` and ``public.SOAK_SPELLED_<MODE>``, faults on, in ``sync`` and in ``history``.

The table is made first from the reference rows plus what the answers no longer hold: rows of records
that vanished and of patents that now have no data (``sync``); in ``history``, current versions of the
reference records, a tenth of them with a stale row hash (changed), and current versions of vanished
records and of patents without data. The shards overlap on a fifth of the patents. Afterwards the table
(``history``: its current versions) must be exactly the reference, with one current version per record,
and each vanished row or changed version removed or closed by exactly one shard.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from soak_checks import compare, describe, is_exact_copy
from soak_postgres import REFERENCE_TABLE, connect, pg_run
from soak_runs import Soak

VALID_FROM = "2026-01-01T00:00:00+00:00"  # when the prepared versions became current
EMPTIED = 200  # at most this many patents without data get a row to lose


def spelled_shards(soak: Soak, pg: dict[str, Any]) -> None:
    for mode in ("sync", "history"):
        run_spelled(soak, pg, mode)


def run_spelled(soak: Soak, pg: dict[str, Any], mode: str) -> None:
    args = soak.args
    table = f"soak_spelled_{mode}"
    expected = prepare_history(soak, pg, table) if mode == "history" else prepare_sync(soak, pg, table)
    first_end, second_start = int(args.patents * 0.6), int(args.patents * 0.4)
    shards = [
        (table, [(0, first_end)]),
        (f"public.{table.upper()}", [(second_start, args.patents - second_start)]),
    ]
    gate = soak.workdir / f"spelled-{mode}.go"
    gate.unlink(missing_ok=True)
    runs = [
        pg_run(soak, f"spelled-{mode}-{i}", pg, spelling, ranges, args.qps / 2, str(gate), write_mode=mode)
        for i, (spelling, ranges) in enumerate(shards)
    ]
    released = soak.release_together(runs, gate)
    if not all([soak.finished(run, f"spelled shard {run.name}") for run in runs]) or not released:
        return
    summaries = [run.summary for run in runs]
    together = max(s["started_at"] for s in summaries) < min(s["ended_at"] for s in summaries)
    destinations = sorted({s["destination"] for s in summaries})
    with connect(pg) as conn:
        current = f"(SELECT * FROM {table} WHERE is_current = 1) AS current" if mode == "history" else table
        diff = compare(conn, current, REFERENCE_TABLE, soak.compared, soak.key_columns)
        versions = history_shape(conn, table) if mode == "history" else {}
    counted = {key: sum(s[key] for s in summaries) for key in expected}
    detail = (
        f"{shards[0][0]} and {shards[1][0]} started together ({'overlapping' if together else 'NOT overlapping'} "
        f"in time), destinations {destinations}; {describe(diff)}; counted {counted} vs expected {expected}"
    )
    ok = together and destinations == [f"soak_pg:public.{table}"] and is_exact_copy(diff)
    ok = ok and counted == expected
    if mode == "history":
        detail += (
            f"; {versions['current']} current versions of {versions['records']} records, "
            f"{versions['backwards']} ending before they start"
        )
        ok = ok and versions["current"] == versions["records"] == diff["rows"] and not versions["backwards"]
    name = "no row the answers no longer hold" if mode == "sync" else "one current version per record"
    soak.check(f"two spellings, one table, {mode}: {name}", ok, detail)


def prepare_sync(soak: Soak, pg: dict[str, Any], table: str) -> dict[str, int]:
    """The reference rows, plus a copy (another record_key) of every 7th and a row for each of the first
    :data:`EMPTIED` patents without data; returns the removals the shards must count."""
    columns = ", ".join(soak.compared)
    with connect(pg) as conn:
        conn.execute(
            f"CREATE TABLE {table} AS SELECT {columns}, %s::VARCHAR(32) AS fetched_at FROM {REFERENCE_TABLE}",
            (VALID_FROM,),
        )
        conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (record_key)")
        vanished = conn.execute(
            f"INSERT INTO {table} ({columns}, fetched_at) SELECT {stale_key_sql(soak.compared)}, fetched_at "
            f"FROM {table} WHERE abs(hashtext(record_key)) % 7 = 0"
        ).rowcount
        template = dict(
            zip(soak.compared, conn.execute(f"SELECT {columns} FROM {table} LIMIT 1").fetchone(), strict=True)
        )
        emptied = without_data(soak)
        with conn.cursor().copy(f"COPY {table} ({columns}, fetched_at) FROM STDIN") as copy:
            for pn in emptied:
                row = {**template, "record_key": stale(pn), "pn": pn}
                copy.write_row([*(row[name] for name in soak.compared), VALID_FROM])
    return {"rows_removed": vanished + len(emptied), "patents_emptied": len(emptied)}


def prepare_history(soak: Soak, pg: dict[str, Any], table: str) -> dict[str, int]:
    """Current versions of the reference records (made from the reference file's rows, as the sink makes
    versions), a tenth changed (a stale row hash), a copy of every 7th as a record that vanished, and
    one for each of the first :data:`EMPTIED` patents without data; returns the versions the shards must
    open and close."""
    from airflow_provider_patsnap.sinks.dialects import ValueList
    from airflow_provider_patsnap.sinks.sql_modes import HISTORY_COLUMNS, ModeWriter, as_version

    names = list(soak.endpoint.column_names)
    writer = ModeWriter(table, "pn", names, ValueList("%s", arrays=True))
    with sqlite3.connect(soak.reference_db) as source:
        rows = [tuple(row) for row in source.execute(f"SELECT {', '.join(names)} FROM soak_rows")]
    versions, changed, vanished = [], 0, 0
    for index, row in enumerate(rows):
        row_hash = writer.row_hash(row)
        if index % 10 == 0:
            row_hash, changed = "0" * 40, changed + 1  # what the table holds is no longer the answer
        versions.append(as_version(row, row_hash, VALID_FROM))
        if index % 7 == 3:
            gone = (stale(row[0]), *row[1:])
            versions.append(as_version(gone, writer.row_hash(gone), VALID_FROM))
            vanished += 1
    emptied = without_data(soak)
    pn_at = names.index("pn")
    for pn in emptied:
        gone = tuple(
            stale(pn) if i == 0 else (pn if i == pn_at else value) for i, value in enumerate(rows[0])
        )
        versions.append(as_version(gone, writer.row_hash(gone), VALID_FROM))
    columns = [*soak.endpoint.columns, *HISTORY_COLUMNS]
    body = ", ".join(f"{column.name} {column.sql_type}" for column in columns)
    with connect(pg) as conn:
        conn.execute(f"CREATE TABLE {table} ({body}, PRIMARY KEY (version_key))")
        with conn.cursor().copy(f"COPY {table} ({', '.join(c.name for c in columns)}) FROM STDIN") as copy:
            for version in versions:
                copy.write_row(version)
    return {
        "versions_opened": changed,
        "versions_closed": changed + vanished + len(emptied),
        "patents_emptied": len(emptied),
    }


def history_shape(conn: Any, table: str) -> dict[str, int]:
    def one(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    return {
        "current": one(f"SELECT COUNT(*) FROM {table} WHERE is_current = 1"),
        "records": one(f"SELECT COUNT(DISTINCT record_key) FROM {table} WHERE is_current = 1"),
        "backwards": one(f"SELECT COUNT(*) FROM {table} WHERE valid_to < valid_from"),
    }


def stale(text: str) -> str:
    """A record key the answers never hold."""
    return hashlib.sha1(f"stale\x1f{text}".encode()).hexdigest()


def stale_key_sql(columns: list[str]) -> str:
    """The columns, the record key replaced by a stale one (SQL)."""
    return ", ".join(
        "substr(encode(sha256(convert_to('stale' || record_key, 'UTF8')), 'hex'), 1, 40)"
        if name == "record_key"
        else name
        for name in columns
    )


def without_data(soak: Soak) -> list[str]:
    """The first :data:`EMPTIED` patents of the list the sandbox has no data for."""
    from common import patent_numbers

    from airflow_provider_patsnap.sandbox.data import patent_object

    found = []
    for pn in patent_numbers(soak.args.patents):
        if patent_object(soak.args.endpoint, "patent_number", pn) is None:
            found.append(pn)
            if len(found) == EMPTIED:
                break
    return found
