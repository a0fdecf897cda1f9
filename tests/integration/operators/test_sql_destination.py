"""Rows upserted into every engine (SQLite, PostgreSQL, MariaDB through both MySQL clients, DuckDB)
through their common.sql hooks."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.endpoints import AWARD, ENDPOINTS
from airflow_provider_patsnap.exceptions import PatsnapCancelledError, UnsupportedDatabaseError
from airflow_provider_patsnap.hooks._shared import reset_shared_state
from airflow_provider_patsnap.hooks.patsnap import PatsnapHook
from airflow_provider_patsnap.operators.patsnap import (
    PatsnapAwardOperator,
    PatsnapLegalInformationOperator,
    PatsnapSeicClassificationOperator,
)
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sinks.base import FetchedBatch
from tests.helpers import CONN_ENV, KilledWhileWaiting, expected_rows, free_port
from tests.sql_engines import ENGINES, engine_connection, execute, records

NUMBERS = [f"CN{130000000 + i}A" for i in range(150)] + ["NODATA01"]


def table_rows(conn_id: str, table: str) -> list[dict[str, Any]]:
    names = [column.name for column in ENDPOINTS["P026"].columns if column.name != "fetched_at"]
    found = records(conn_id, f"SELECT {', '.join(names)} FROM {table} ORDER BY record_key")
    return [dict(zip(names, record, strict=True)) for record in found]


def run_twice_and_check(conn_id: str, table: str | None, destination: str) -> None:
    op = PatsnapLegalInformationOperator(
        task_id="t", patent_numbers=NUMBERS, sql_conn_id=conn_id, table=table
    )
    first = op.execute(context={})
    after_first = table_rows(conn_id, table or "patsnap_legal_information")
    second = op.execute(context={})
    after_second = table_rows(conn_id, table or "patsnap_legal_information")

    expected = sorted(expected_rows(ENDPOINTS["P026"], NUMBERS), key=lambda row: row["record_key"])
    assert after_first == after_second == expected  # values, CJK and codes as text survive the database
    assert first["rows"] == second["rows"] == len(expected)
    assert first["destination"] == f"{conn_id}:{destination}"  # the table as the database names it
    assert first["missing"] >= 1 and first["calls"] == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_a_rerun_leaves_the_same_rows(
    patsnap: Sandbox, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_RERUN", engine_connection(engine, request, "rerun"))
    if engine == "postgres":  # a schema of its own, named in another case
        execute("rerun", "CREATE SCHEMA enrich")
        run_twice_and_check("rerun", "ENRICH.Legal_Events", "enrich.legal_events")
    else:
        schema = {"sqlite": "main", "duckdb": "main"}.get(engine) or json.loads(
            os.environ["AIRFLOW_CONN_RERUN"]
        )["schema"]
        run_twice_and_check("rerun", None, f"{schema}.patsnap_legal_information")


@pytest.mark.parametrize("estimate_only", [False, True], ids=["run", "estimate"])
def test_a_database_the_sink_does_not_write_to_fails_before_any_call(
    patsnap: Sandbox, monkeypatch: pytest.MonkeyPatch, estimate_only: bool
) -> None:
    """A Redshift connection (the postgres hook with "redshift": true) is refused when the task starts,
    naming the database and where the recipes are; nothing connects to it (no server listens on its
    port) and no call reaches PatSnap, not even for a token."""
    redshift = {"conn_type": "postgres", "host": "127.0.0.1", "port": free_port(), "schema": "wh"}
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT_WH", json.dumps({**redshift, "extra": {"redshift": True}}))
    op = PatsnapAwardOperator(
        task_id="t",
        patent_numbers=NUMBERS,
        sql_conn_id="redshift_wh",
        refresh_after="1d",
        estimate_only=estimate_only,
    )

    with pytest.raises(UnsupportedDatabaseError) as raised:
        op.execute(context={})

    message = str(raised.value)
    assert message.startswith("connection 'redshift_wh' is a redshift database (PostgresHook)")
    recipes = "docs/destinations.md#cloud-warehouses-parquet-then-their-own-loaders"
    assert f"{recipes} (Snowflake, BigQuery, Redshift, Databricks)" in message
    assert patsnap.requests == []


@pytest.mark.parametrize("engine", ENGINES)
def test_seic_rows_keep_chinese_and_code_text(
    patsnap: Sandbox, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SEIC", engine_connection(engine, request, "seic"))
    PatsnapSeicClassificationOperator(
        task_id="t", patent_numbers=NUMBERS[:40], lang="cn", sql_conn_id="seic", table="seic_cn"
    ).execute(context={})
    stored = set(records("seic", "SELECT record_key, seic_lv2_no, seic_lv2_desc FROM seic_cn"))
    expected = {
        (row["record_key"], row["seic_lv2_no"], row["seic_lv2_desc"])
        for row in expected_rows(ENDPOINTS["P022"], NUMBERS[:40], lang="cn")
    }
    assert stored == expected and any("\u4e00" <= ch <= "\u9fff" for _, _, desc in stored for ch in desc)


@pytest.fixture
def sandbox_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The sandbox in its own process, so its request log does not count in this process's memory.

    ``concurrency`` 4: at most 4 calls in flight and 32 fetched batches waiting bound memory, not the
    input size; a small window makes a leak proportional to the input stand out.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_patsnap.sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().split(" listening on ")[1].split()[0]
        monkeypatch.setenv(
            CONN_ENV,
            f'{{"conn_type": "patsnap", "host": "{base_url}", "login": "sandbox-client", '
            '"password": "sandbox-secret", "extra": {"qps": 0, "concurrency": 4}}',
        )
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def peak_traced_bytes(conn_id: str, count: int, offset: int) -> tuple[int, dict[str, Any]]:
    ids = [f"US{20000000 + offset + i}B2" for i in range(count)]
    op = PatsnapLegalInformationOperator(task_id="t", patent_numbers=ids, sql_conn_id=conn_id)
    gc.collect()
    tracemalloc.start()
    try:
        summary = op.execute(context={})
        return tracemalloc.get_traced_memory()[1], summary
    finally:
        tracemalloc.stop()


def test_20000_patents_into_sqlite_keep_memory_flat(sandbox_process: None, sqlite_conn: str) -> None:
    started = time.monotonic()
    small_peak, _ = peak_traced_bytes(sqlite_conn, 1_000, 0)
    big_peak, summary = peak_traced_bytes(sqlite_conn, 20_000, 1_000)
    elapsed = time.monotonic() - started

    assert summary["requested"] == 20_000 and summary["calls"] == 200
    assert summary["rows"] > 40_000  # several legal events per patent
    rows_in_table = (
        BaseHook.get_connection(sqlite_conn)
        .get_hook()
        .get_first("SELECT COUNT(*) FROM patsnap_legal_information")[0]
    )
    assert rows_in_table > summary["rows"]  # both runs landed
    # Holding every row would take well over 50 MB; one batch in flight per thread takes a few MB.
    print(
        f"peak traced memory: 1,000 ids {small_peak / 1e6:.1f} MB, 20,000 ids {big_peak / 1e6:.1f} MB "
        f"({elapsed:.1f} s, pid {os.getpid()})"
    )
    assert big_peak < 3 * small_peak + 8_000_000
    assert big_peak < 25_000_000


def test_on_kill_ends_the_wait_between_write_attempts(patsnap: Sandbox, sqlite_conn: str) -> None:
    clock = KilledWhileWaiting()
    reset_shared_state(clock)
    op = PatsnapAwardOperator(task_id="t", patent_numbers=["CN1A"], sql_conn_id=sqlite_conn, table="awards")
    op._hook = PatsnapHook()
    clock.kill = op.on_kill
    rows = [
        AWARD.map_patent({"pn": f"CN{i}A", "patent_id": f"p{i}", "patent_award_data": [{}]}, "t").rows[0]
        for i in range(4)
    ]
    sink = op.open_table("patent_number", op._hook)
    fetched = FetchedBatch([], "2026-01-01T00:00:00+00:00")
    blocker = sqlite3.connect(os.environ["SQLITE_PATH"], isolation_level=None)
    try:
        sink.write_batch(rows[:2], (), fetched)  # committed before the kill: it stays
        sink._connection.execute("PRAGMA busy_timeout = 0")  # lose the race at once, not after 5 s
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(PatsnapCancelledError):
            sink.write_batch(rows[2:], (), fetched)
        blocker.execute("ROLLBACK")
    finally:
        sink.close(ok=False)
        blocker.close()
    # One attempt, one wait of the unchanged policy (attempt 1: 0.05 s × 2 × 0.5-1), no attempt after it.
    assert sink.write_retries == 1 and len(clock.waits) == 1 and 0.05 <= clock.waits[0] <= 0.1
    count = BaseHook.get_connection(sqlite_conn).get_hook().get_first("SELECT COUNT(*) FROM awards")
    assert count[0] == 2
