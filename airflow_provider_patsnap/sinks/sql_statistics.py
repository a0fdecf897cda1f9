"""Planner statistics that keep up with a table a run is filling.

``sync`` and ``history`` find a batch's rows by the patent column's index (and freshness and spellings
find state rows by their key). A planner that has never seen statistics of a table it created empty
moments ago reads "this column matches half the table" for a list of 100 patents and scans the whole
table on every write, so a first load slows as the table grows (docs/performance.md, "One task at QPS
100"); autovacuum's own ANALYZE comes a minute or more late. So the sink analyzes its tables itself each
time a run has written as many rows as the table held at its last analyze (10,000 at least): a few times
per run, each a sample of the table, not a scan.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from airflow_provider_patsnap.sinks.dialects import SqlDialect, TableIdentity

log = logging.getLogger(__name__)

#: Rows a run writes before its first ANALYZE of a table that held fewer.
FLOOR = 10_000


class PlannerStatistics:
    """Runs the dialect's ``ANALYZE`` of ``tables`` as a run grows them; a no-op on a database whose
    planner needs none from us (its :meth:`SqlDialect.analyze_sql` is None)."""

    def __init__(
        self, dialect: SqlDialect, connection: Any, tables: Sequence[TableIdentity], table_rows: int
    ) -> None:
        self._dialect = dialect
        self._connection = connection
        self._statements = [sql for sql in map(dialect.analyze_sql, tables) if sql is not None]
        self._table_rows = table_rows  # at the last analyze, as far as this run knows
        self._written = 0  # since then

    def written(self, rows: int) -> None:
        """``rows`` more were committed: analyze once the run's rows reach the table's size."""
        if not self._statements:
            return
        self._written += rows
        if self._written < max(FLOOR, self._table_rows):
            return
        self._table_rows += self._written
        self._written = 0
        try:
            with self._dialect.cursor(self._connection) as cursor:
                for statement in self._statements:
                    cursor.execute(statement)
            self._dialect.commit(self._connection)
        except Exception as error:  # statistics are the planner's help, never a reason to fail a write
            log.warning("Refreshing the planner's statistics failed (%s); the rows are written", error)
            self._statements = []
            try:
                self._dialect.rollback(self._connection)
            except Exception:  # the connection is gone: the next write reports it
                pass
