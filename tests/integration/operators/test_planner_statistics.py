"""A table a run fills from empty keeps its indexes in use: on PostgreSQL the sink analyzes the table and
its state table as the run grows them, so ``sync`` finds a batch's rows through the patent index instead
of reading the whole table on every write (a planner without statistics scans it)."""

from __future__ import annotations

import pytest

from airflow_provider_patsnap.operators.patsnap import PatsnapLegalInformationOperator
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sinks.sql_statistics import FLOOR
from tests.sql_engines import engine_connection, records

PATENTS = 6000  # about 2.7 legal events each: past the first analyze's row count


def test_a_table_filled_in_one_run_is_read_through_its_index(
    patsnap: Sandbox, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FILLED", engine_connection("postgres", request, "filled"))
    numbers = [f"CN{140000000 + i}A" for i in range(PATENTS)]

    summary = PatsnapLegalInformationOperator(
        task_id="t", patent_numbers=numbers, sql_conn_id="filled", write_mode="sync"
    ).execute(context={})

    assert summary["rows"] > FLOOR
    analyzed = dict(
        records(
            "filled",
            "SELECT relname, analyze_count FROM pg_stat_user_tables WHERE relname LIKE %s",
            ["patsnap_legal%"],
        )
    )
    assert analyzed["patsnap_legal_information"] >= 1
    assert analyzed["patsnap_legal_information_state"] >= 1
    # The lookup sync makes before writing one batch of 100 new patents, planned as the sink's is.
    listed = ", ".join(f"'CN{150000000 + i}A'" for i in range(100))
    query = f"SELECT record_key, pn FROM patsnap_legal_information WHERE pn = ANY(ARRAY[{listed}])"
    [(top, *_)] = [[line for (line,) in records("filled", f"EXPLAIN {query}")]]
    assert "Seq Scan" not in top, top
