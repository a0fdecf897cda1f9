"""When the SQL sink refreshes the planner's statistics of the tables a run fills, and that a refresh that
fails never fails the write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_provider_patsnap.sinks.dialects import SqliteDialect, TableIdentity
from airflow_provider_patsnap.sinks.sql_statistics import FLOOR, PlannerStatistics

TABLE = TableIdentity("db", "public", "t")
STATE = TableIdentity("db", "public", "t_state")


class RecordingDialect(SqliteDialect):
    """A dialect that would ANALYZE, recording the statements and commits instead of running them."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.executed: list[str] = []
        self.commits = self.rollbacks = 0

    def analyze_sql(self, identity: TableIdentity) -> str | None:
        return f"ANALYZE {identity.qualified}"

    @contextmanager
    def cursor(self, connection: Any) -> Iterator[Any]:
        dialect = self

        class Cursor:
            def execute(self, sql: str) -> None:
                if dialect.fail:
                    raise RuntimeError("permission denied")
                dialect.executed.append(sql)

        yield Cursor()

    def commit(self, connection: Any) -> None:
        self.commits += 1

    def rollback(self, connection: Any) -> None:
        self.rollbacks += 1
        raise RuntimeError("connection lost")


def test_tables_are_analyzed_each_time_the_run_doubles_them() -> None:
    dialect = RecordingDialect()
    statistics = PlannerStatistics(dialect, None, [TABLE, STATE], table_rows=0)
    analyzed_after = []
    for written in range(1, 161):
        before = len(dialect.executed)
        statistics.written(500)
        if len(dialect.executed) > before:
            analyzed_after.append(written * 500)
    assert analyzed_after == [FLOOR, 2 * FLOOR, 4 * FLOOR, 8 * FLOOR]
    assert dialect.executed[:2] == ["ANALYZE public.t", "ANALYZE public.t_state"]


def test_a_large_table_is_analyzed_only_once_the_run_matches_its_size() -> None:
    dialect = RecordingDialect()
    statistics = PlannerStatistics(dialect, None, [TABLE], table_rows=1_000_000)
    statistics.written(999_999)
    assert dialect.executed == []
    statistics.written(1)
    assert dialect.executed == ["ANALYZE public.t"]


def test_a_database_that_needs_no_statistics_gets_no_statement() -> None:
    statistics = PlannerStatistics(SqliteDialect(), None, [TABLE], table_rows=0)
    statistics.written(10 * FLOOR)  # would fail on a None connection if it ran anything


def test_a_failed_refresh_is_logged_and_not_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    dialect = RecordingDialect(fail=True)
    statistics = PlannerStatistics(dialect, None, [TABLE], table_rows=0)
    statistics.written(FLOOR)  # the failure and the failed rollback stay inside
    statistics.written(10 * FLOOR)
    assert (dialect.executed, dialect.rollbacks) == ([], 1)
    assert "Refreshing the planner's statistics failed (permission denied)" in caplog.text
