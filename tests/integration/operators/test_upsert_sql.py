"""The upsert SQL docs/compatibility.md says SQLite and PostgreSQL get is the SQL their hooks generate."""

from __future__ import annotations

import re

import pytest

from airflow_provider_patsnap._compat import BaseHook
from airflow_provider_patsnap.endpoints import ENDPOINTS
from tests.helpers import REPO_ROOT

AWARD = ENDPOINTS["P032"]


def documented_upsert(database: str) -> str:
    """The first code span of the database's row in the compatibility page's table."""
    text = (REPO_ROOT / "docs" / "compatibility.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith(f"| {database} "))
    return re.findall(r"`([^`]+)`", row.split("|")[2])[0]


def generated_upsert(conn_id: str) -> str:
    """What ``SqlSink`` gets from the hook: ``insert_rows(replace=True, replace_index=["record_key"])``."""
    hook = BaseHook.get_connection(conn_id).get_hook()
    names = [column.name for column in AWARD.columns]
    sql = hook.dialect.generate_replace_sql(
        AWARD.default_table, tuple("x" for _ in names), names, replace_index=["record_key"]
    )
    return " ".join(sql.split())


def matches(documented: str, generated: str) -> bool:
    """``...`` in the docs stands for the elided rest of a column or value list."""
    pattern = ".*?".join(re.escape(part) for part in documented.split("..."))
    return re.fullmatch(pattern, generated) is not None


@pytest.mark.parametrize(
    ("database", "conn_fixture"), [("SQLite", "sqlite_conn"), ("PostgreSQL", "postgres_conn")]
)
def test_documented_upsert_is_what_the_hook_generates(
    database: str, conn_fixture: str, request: pytest.FixtureRequest
) -> None:
    generated = generated_upsert(request.getfixturevalue(conn_fixture))
    documented = documented_upsert(database)
    assert matches(documented, generated), f"docs: {documented}\nhook: {generated}"
