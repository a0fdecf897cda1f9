"""The upsert SQL docs/compatibility.md says each database gets is the SQL its dialect generates for the
real hook of a connection to it."""

from __future__ import annotations

import re

import pytest

from airflow_provider_patsnap.endpoints import ENDPOINTS
from tests.helpers import REPO_ROOT
from tests.sql_engines import Session, engine_connection

AWARD = ENDPOINTS["P032"]
DATABASES = {  # the row of the table → the engine the tests start for it
    "SQLite": "sqlite",
    "PostgreSQL": "postgres",
    "MySQL, MariaDB": "mariadb",
    "DuckDB": "duckdb",
}


def documented_upsert(database: str) -> str:
    """The first code span of the database's row in the compatibility page's table."""
    text = (REPO_ROOT / "docs" / "compatibility.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith(f"| {database} ("))
    return re.findall(r"`([^`]+)`", row.split("|")[2])[0]


def generated_upsert(conn_id: str) -> str:
    """What ``SqlSink`` writes many rows with: its dialect's upsert of the resolved table (the MySQL
    database, a fresh one per test, shown as ``warehouse``)."""
    session = Session(conn_id)
    try:
        identity = session.resolve(AWARD.default_table)
        if session.dialect.name == "mysql":
            identity = identity._replace(schema="warehouse")
        upsert = session.dialect.upsert(identity, AWARD.columns, "record_key")
    finally:
        session.close()
    return " ".join(str(getattr(upsert, "bulk_sql", upsert.sql)).split())


def matches(documented: str, generated: str) -> bool:
    """``...`` in the docs stands for the elided rest of a column or value list."""
    pattern = ".*?".join(re.escape(part) for part in documented.split("..."))
    return re.fullmatch(pattern, generated) is not None


@pytest.mark.parametrize("database", list(DATABASES))
def test_documented_upsert_is_what_the_dialect_generates(
    database: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_UPSERT", engine_connection(DATABASES[database], request, "upsert"))
    generated = generated_upsert("upsert")
    documented = documented_upsert(database)
    assert matches(documented, generated), f"docs: {documented}\ngenerated: {generated}"
    assert "REPLACE" not in generated
