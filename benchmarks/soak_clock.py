"""The soak's wrong clock: a run whose operators' clock is a month ahead, then the clock corrected.

Three runs of a fifth of the patents into one fresh PostgreSQL table, in ``history`` with
``refresh_after="1d"``, faults on: a month ahead (its state rows say "fetched" in the future), then at
the host's time (those rows promise nothing: every patent is fetched again), then an hour later (now
everything is fresh: nothing is called). The table must hold every reference row of those patents
exactly once, as one current version per record: a clock going back opens no version twice.
"""

from __future__ import annotations

from typing import Any

from soak_checks import compare, describe, is_exact_copy
from soak_postgres import REFERENCE_TABLE, connect, pg_run
from soak_runs import Soak

TABLE = "soak_clock"
REFERENCE = "soak_reference_clock"
AHEAD = 30 * 86_400  # seconds
SHARE = 5  # a fifth of the patents


def clock_ahead_then_corrected(soak: Soak, pg: dict[str, Any]) -> None:
    args = soak.args
    count = max(1, args.patents // SHARE)
    reference_subset(soak, pg, count)
    runs = []
    for name, offset in (("clock-ahead", AHEAD), ("clock-corrected", 0.0), ("clock-hour-later", 3600.0)):
        run = pg_run(
            soak,
            name,
            pg,
            TABLE,
            [(0, count)],
            args.qps,
            write_mode="history",
            refresh_after="1d",
            clock_offset=offset,
        )
        if not soak.finished(run, f"run {name}"):
            return
        runs.append(run.summary)
    ahead, corrected, later = runs
    with connect(pg) as conn:
        current = f"(SELECT * FROM {TABLE} WHERE is_current = 1) AS current"
        diff = compare(conn, current, REFERENCE, soak.compared, soak.key_columns)
        versions, ending = conn.execute(f"SELECT COUNT(*), COUNT(valid_to) FROM {TABLE}").fetchone()
    soak.check(
        "a clock ahead, then corrected: nothing fresh from the future, every row once",
        corrected["skipped_fresh"] == 0
        and corrected["requested"] == ahead["requested"] == count
        and corrected["billed_units"] == ahead["billed_units"]
        and later["skipped_fresh"] == count
        and later["calls"] == 0
        and is_exact_copy(diff)
        and versions == diff["rows"]
        and ending == 0,
        f"{count} patents: a month ahead {summary(ahead)}; corrected {summary(corrected)}; an hour later "
        f"{summary(later)}; {describe(diff)}; {versions} versions in all, {ending} closed",
    )


def summary(run: dict[str, Any]) -> str:
    return (
        f"{run.get('billed_units')} units, {run.get('calls')} calls, skipped_fresh {run.get('skipped_fresh')}, "
        f"versions opened {run.get('versions_opened')}"
    )


def reference_subset(soak: Soak, pg: dict[str, Any], count: int) -> None:
    """The reference rows of the first ``count`` patents, as ``soak_reference_clock``."""
    from common import patent_numbers

    with connect(pg) as conn:
        conn.execute("CREATE TEMPORARY TABLE soak_clock_ids (pn TEXT PRIMARY KEY)")
        with conn.cursor().copy("COPY soak_clock_ids (pn) FROM STDIN") as copy:
            for pn in patent_numbers(count):
                copy.write_row((pn,))
        conn.execute(
            f"CREATE TABLE {REFERENCE} AS SELECT r.* FROM {REFERENCE_TABLE} AS r JOIN soak_clock_ids USING (pn)"
        )
