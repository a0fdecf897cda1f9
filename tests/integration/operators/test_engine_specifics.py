"""What one engine does that the others do not, through the operators: MariaDB stores utf8mb4 end to end
and rejects the one row an older table refuses (mysqlclient raises that as an OperationalError); a
DuckDB file has one writer process at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_patsnap.endpoints import AWARD
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from airflow_provider_patsnap.sandbox import Sandbox
from airflow_provider_patsnap.sinks.sql import SqlSink
from tests.helpers import CONN_ENV, CannedVendor
from tests.mariadb_server import fresh_mariadb_database
from tests.sql_engines import execute, records

# Four-byte characters (emoji, CJK extension B) need utf8mb4: utf8mb3 refuses them.
NAMES = ["专利奖 金奖", "emoji 😀 and 🧪", "CJK extension B 𠀀𪜀", "Ünïcödé ß"]
CLIENTS = {
    "mysqlclient": {"charset": "utf8mb4"},
    "mysqlclient-utf8mb3": {"charset": "utf8"},  # a 3-byte connection: the sink makes it utf8mb4
    "mysql-connector-python": {"client": "mysql-connector-python"},
}


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], CannedVendor]]:
    started: list[CannedVendor] = []

    def start(data_json: str) -> CannedVendor:
        canned = CannedVendor(data_json)
        started.append(canned)
        monkeypatch.setenv(CONN_ENV, canned.connection_json())
        return canned

    yield start
    for canned in started:
        canned.close()


def maria(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]) -> str:
    settings = json.loads(fresh_mariadb_database(request.getfixturevalue("mariadb_server")))
    monkeypatch.setenv("AIRFLOW_CONN_MARIA_OPS", json.dumps({**settings, "extra": extra}))
    return "maria_ops"


def awards_payload(*names: str) -> str:
    awards = [{"award_name": name, "award_level": "金", "award_referrer": name} for name in names]
    return json.dumps([{"pn": "CN1A", "patent_id": "p1", "patent_award_data": awards}], ensure_ascii=False)


@pytest.mark.parametrize("client", list(CLIENTS))
def test_mariadb_keeps_cjk_and_four_byte_characters_through_the_operator(
    vendor: Callable[[str], CannedVendor],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    client: str,
) -> None:
    conn_id = maria(request, monkeypatch, CLIENTS[client])
    vendor(awards_payload(*NAMES))

    summary = PatsnapAwardOperator(
        task_id="t", patent_numbers=["CN1A"], sql_conn_id=conn_id, write_mode="history"
    ).execute(context={})

    assert (summary["rows"], summary["rejects"]) == (len(NAMES), 0)
    stored = records(conn_id, "SELECT award_name, award_level, award_referrer FROM patsnap_award")
    assert sorted(stored) == sorted((name, "金", name) for name in NAMES)
    # The table is utf8mb4 whatever the connection asked for, and compares as PostgreSQL does.
    [(collation,)] = records(
        conn_id,
        "SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'patsnap_award'",
    )
    assert collation == "utf8mb4_bin"


@pytest.mark.parametrize("client", ["mysqlclient", "mysql-connector-python"])
def test_a_character_an_older_mariadb_table_refuses_rejects_that_row_only(
    vendor: Callable[[str], CannedVendor],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    client: str,
) -> None:
    """A table made in utf8mb3 refuses an emoji with error 1366 ("Incorrect string value"), which
    mysqlclient raises as an OperationalError and the connector as a DataError: the row with it is
    rejected, the batch's other rows land, its patent is not remembered as fetched."""
    conn_id = maria(request, monkeypatch, CLIENTS[client])
    columns = ", ".join(f"{column.name} {column.sql_type}" for column in AWARD.columns)
    execute(
        conn_id, f"CREATE TABLE patsnap_award ({columns}, PRIMARY KEY (record_key)) DEFAULT CHARSET=utf8mb3"
    )
    vendor(awards_payload("金奖", "emoji 😀"))

    summary = PatsnapAwardOperator(
        task_id="t", patent_numbers=["CN1A"], sql_conn_id=conn_id, write_mode="merge", max_rejects=1
    ).execute(context={})

    assert (summary["rows"], summary["rejects"]) == (1, 1)
    assert records(conn_id, "SELECT award_name FROM patsnap_award") == [("金奖",)]
    [(reason, raw)] = records(conn_id, "SELECT reason, raw_value FROM patsnap_award_rejects")
    assert "refused the row" in reason and "1366" in reason and "Incorrect string value" in reason
    assert json.loads(raw)["award_name"] == "emoji 😀"
    assert records(conn_id, "SELECT COUNT(*) FROM patsnap_award_state") == [(0,)]  # fetched again next time


SECOND_WRITER = textwrap.dedent(
    """
    import sys
    from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
    try:
        PatsnapAwardOperator(task_id="t", patent_numbers=["CN1A"], sql_conn_id="duck_warehouse").execute(
            context={}
        )
    except Exception as error:
        print("RAISED", type(error).__name__, str(error).splitlines()[0])
        sys.exit(3)
    """
)


def test_a_second_process_writing_a_duckdb_file_fails_before_any_call(
    patsnap: Sandbox, duckdb_conn: str
) -> None:
    """A DuckDB file has one writer process: while a task holds it open, a task in another process
    fails when it opens its table (before calling PatSnap) with DuckDB's own message, which names the
    lock and the process holding it; its retries apply."""
    holder = SqlSink(duckdb_conn, "patsnap_award", AWARD.columns, endpoint="P032")
    try:
        other = subprocess.run(
            [sys.executable, "-c", SECOND_WRITER], capture_output=True, text=True, timeout=300, check=False
        )
    finally:
        holder.close(ok=True)
    assert other.returncode == 3, other.stdout[-2000:] + other.stderr[-2000:]
    [raised] = [line for line in other.stdout.splitlines() if line.startswith("RAISED ")]
    assert "IOException" in raised and "Could not set lock on file" in raised and "Conflicting lock" in raised
    assert patsnap.requests == []  # no call, not even for a token
