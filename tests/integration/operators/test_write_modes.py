"""Write modes on every engine (SQLite, PostgreSQL, MariaDB through both MySQL clients, DuckDB): sync
makes the table true, history keeps every version.

The vendor is a loopback PatSnap whose data the test changes between runs: records change, vanish, and
patents turn to no data. Time comes from a fake clock (the operators' ``utc_now``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_patsnap._compat import AIRFLOW_V_3
from airflow_provider_patsnap.operators import _batch
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from tests.helpers import CONN_ENV, OperatorClock, ScriptedVendor
from tests.integration.operators.test_sql_concurrency import together
from tests.sql_engines import ENGINES, engine_connection, records, refuse

T1 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
T3 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def award(name: str, level: str = "gold", referrer: str = "office") -> dict[str, Any]:
    return {"award_name": name, "award_level": level, "award_session": "2020", "award_referrer": referrer}


def patent(pn: str, *awards: dict[str, Any]) -> dict[str, Any]:
    return {"pn": pn, "patent_id": f"id-{pn}", "patent_award_data": list(awards)}


BEFORE = {
    "CN1A": patent("CN1A", award("Gold prize"), award("Design prize")),
    "CN2A": patent("CN2A", award("Gold prize")),
    "CN3A": patent("CN3A", award("Silver prize", "silver")),
}
# CN1A loses its design prize and its gold prize's referrer changes; CN2A turns to no data; CN3A stays.
AFTER = {
    "CN1A": patent("CN1A", award("Gold prize", referrer="ministry")),
    "CN3A": BEFORE["CN3A"],
}
REQUESTED = ["CN1A", "CN2A", "CN3A"]


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedVendor]:
    scripted = ScriptedVendor()
    monkeypatch.setenv(CONN_ENV, scripted.connection_json())
    yield scripted
    scripted.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> OperatorClock:
    fake = OperatorClock(T1)
    monkeypatch.setattr(_batch, "utc_now", fake)
    return fake


@pytest.fixture(params=ENGINES)
def warehouse(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection id ``wm`` to an empty database of each engine."""
    monkeypatch.setenv("AIRFLOW_CONN_WM", engine_connection(request.param, request, "wm"))
    return "wm"


def run(mode: str, patents: list[str] = REQUESTED, **kwargs: Any) -> dict[str, Any]:
    if not AIRFLOW_V_3:
        # Airflow 2.11's execute guard keeps a thread-local that only the importing thread has; real
        # shards are separate processes, here they are threads.
        from airflow.models.baseoperator import ExecutorSafeguard

        if not hasattr(ExecutorSafeguard._sentinel, "callers"):
            ExecutorSafeguard._sentinel.callers = {}
    op = PatsnapAwardOperator(
        task_id="awards", patent_numbers=patents, sql_conn_id="wm", write_mode=mode, **kwargs
    )
    return op.execute(context={})


def query(sql: str, parameters: Any = None) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (placeholders ``%s``) in the warehouse."""
    return records("wm", sql, parameters)


def award_table(where: str = "", parameters: Any = None) -> set[tuple[Any, ...]]:
    """(pn, award_name, award_level, award_referrer) of the rows in patsnap_award."""
    sql = f"SELECT pn, award_name, award_level, award_referrer FROM patsnap_award {where}"
    return set(query(sql, parameters))


def rows_of(objects: dict[str, dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (pn, item["award_name"], item["award_level"], item["award_referrer"])
        for pn, obj in objects.items()
        for item in obj["patent_award_data"]
    }


# --- sync ------------------------------------------------------------------------------------------


def test_sync_makes_the_table_exactly_what_patsnap_returns_now(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    vendor.objects = {**BEFORE, "CN9A": patent("CN9A", award("Other prize"))}
    run("sync", [*REQUESTED, "CN9A"])
    vendor.objects = AFTER
    clock.now = T2

    summary = run("sync")

    # CN9A was not fetched this time: its row stays. Everything else is what PatSnap returned now.
    assert award_table() == rows_of(AFTER) | {("CN9A", "Other prize", "gold", "office")}
    assert summary["rows_removed"] == 2  # CN1A's design prize, CN2A's gold prize
    assert summary["patents_emptied"] == 1 and summary["missing"] == 1  # CN2A
    assert summary["rows"] == len(rows_of(AFTER))
    rerun = run("sync")
    assert rerun["rows_removed"] == rerun["patents_emptied"] == 0
    assert award_table() == rows_of(AFTER) | {("CN9A", "Other prize", "gold", "office")}


def test_merge_keeps_rows_patsnap_no_longer_returns(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    vendor.objects = BEFORE
    run("merge")
    vendor.objects = AFTER

    summary = run("merge")

    assert award_table() == rows_of(AFTER) | {
        ("CN1A", "Design prize", "gold", "office"),
        ("CN2A", "Gold prize", "gold", "office"),
    }
    assert summary["rows_removed"] == 0 and summary["write_mode"] == "merge"


def test_sync_is_the_default_for_sql(vendor: ScriptedVendor, clock: OperatorClock, warehouse: str) -> None:
    vendor.objects = BEFORE
    op = PatsnapAwardOperator(task_id="awards", patent_numbers=REQUESTED, sql_conn_id="wm")
    op.execute(context={})
    vendor.objects = AFTER
    assert op.execute(context={})["write_mode"] == "sync"
    assert award_table() == rows_of(AFTER)


def test_sync_keeps_the_rows_of_a_patent_whose_data_was_partly_rejected(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    vendor.objects = BEFORE
    run("sync")
    # A glitch: one of CN1A's records has an object where text belongs. Its other rows must not go.
    vendor.objects = {**BEFORE, "CN1A": patent("CN1A", {**award("Gold prize"), "award_name": {"x": 1}})}

    summary = run("sync", max_rejects=5)

    assert summary["rejects"] == 1 and summary["rows_removed"] == 0
    assert award_table() == rows_of(BEFORE)


@pytest.mark.parametrize("mode", ["sync", "history"])
def test_a_patent_requested_in_another_spelling_loses_its_rows_when_it_has_no_data(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str, mode: str
) -> None:
    # PatSnap echoes its own spelling: the rows say CN1A, whatever spelling the patent was asked for in.
    vendor.objects = {"cn1a": patent("CN1A", award("Gold prize")), "CN2A": BEFORE["CN2A"]}
    run(mode, [" cn1a ", "CN2A"])
    vendor.objects = {"CN2A": BEFORE["CN2A"]}
    clock.now = T2

    summary = run(mode, ["Cn1A", "CN2A"])  # no data for it now, asked for in a third spelling

    current = "WHERE is_current = 1" if mode == "history" else ""
    assert award_table(current) == rows_of({"CN2A": BEFORE["CN2A"]})
    assert summary["patents_emptied"] == 1
    assert summary["rows_removed" if mode == "sync" else "versions_closed"] == 1


def test_a_patent_keeps_the_spelling_its_rows_hold_through_a_batch_that_could_not_empty_it(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    vendor.objects = {"cn1a": patent("CN1A", award("Gold prize"))}
    run("sync", ["cn1a"])
    # No data for it, but the batch also returned an object that names no patent: it may be cn1a's,
    # so cn1a is not emptied this time.
    vendor.objects = {"cn1a": {"patent_award_data": [award("Gold prize")]}}
    clock.now = T2
    assert run("sync", ["cn1a"], max_rejects=1)["patents_emptied"] == 0
    vendor.objects = {}
    clock.now = T3

    summary = run("sync", ["cn1a"])

    assert summary["patents_emptied"] == 1 and award_table() == set()


def refuse_long_referrers(warehouse: str) -> None:
    """Make the database refuse an award_referrer longer than 8 characters (a value refused by the
    database, not by the mapping)."""
    refuse(warehouse, "patsnap_award", "length(award_referrer) <= 8")


# CN1A's gold prize changes to a referrer the database refuses, and its design prize vanishes; CN2A's
# prize changes to a referrer the database takes.
REFUSED_AFTER = {
    "CN1A": patent("CN1A", award("Gold prize", referrer="a-very-long-referrer")),
    "CN2A": patent("CN2A", award("Gold prize", referrer="ministry")),
}


def test_sync_keeps_the_rows_of_a_patent_whose_new_row_the_database_refused(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    vendor.objects = BEFORE
    run("sync")
    refuse_long_referrers(warehouse)
    vendor.objects = REFUSED_AFTER

    summary = run("sync", ["CN1A", "CN2A"], max_rejects=5)

    assert summary["rejects"] == 1 and summary["rows"] == 1
    assert summary["rows_removed"] == 0  # CN1A's design prize stays: some of CN1A's data was refused
    assert award_table() == rows_of({**BEFORE, "CN2A": REFUSED_AFTER["CN2A"]})
    [(reason,)] = query("SELECT reason FROM patsnap_award_rejects")
    assert "patsnap_award refused the row: " in reason


def test_history_keeps_the_current_version_of_a_record_whose_new_version_the_database_refused(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    vendor.objects = BEFORE
    run("history")
    refuse_long_referrers(warehouse)
    vendor.objects = REFUSED_AFTER
    clock.now = T2

    summary = run("history", ["CN1A", "CN2A"], max_rejects=5)

    assert summary["rejects"] == 1
    # Only CN2A's change landed: one version opened, one closed. CN1A is as it was, nothing closed.
    assert (summary["versions_opened"], summary["versions_closed"]) == (1, 1)
    assert award_table("WHERE is_current = 1") == rows_of({**BEFORE, "CN2A": REFUSED_AFTER["CN2A"]})
    [(versions, current)] = query("SELECT COUNT(*), SUM(is_current) FROM patsnap_award")
    assert (versions, current) == (5, 4)


def test_overlapping_sync_shards_leave_exactly_the_new_rows(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    numbers = [f"CN{n}B" for n in range(1200)]
    vendor.objects = {pn: patent(pn, award("Gold prize"), award("Design prize")) for pn in numbers}
    run("sync", numbers)
    # Now every patent lost its design prize and every third has no data at all.
    after = {pn: patent(pn, award("Gold prize", referrer="new")) for i, pn in enumerate(numbers) if i % 3}
    vendor.objects = after
    summaries: list[dict[str, Any]] = []

    errors = together(
        [
            lambda: summaries.append(run("sync", numbers[:1100])),
            lambda: summaries.append(run("sync", numbers[100:])),
        ]
    )

    assert errors == []
    assert award_table() == rows_of(after)
    # Each vanished row was deleted by exactly one shard, whichever came first.
    assert sum(summary["rows_removed"] for summary in summaries) == 1200 + 400
    assert sum(summary["patents_emptied"] for summary in summaries) == 400


def test_overlapping_merge_shards_write_every_row_exactly_once(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    numbers = [f"CN{n}M" for n in range(1200)]
    vendor.objects = {pn: patent(pn, award("Gold prize"), award("Design prize")) for pn in numbers}
    summaries: list[dict[str, Any]] = []

    errors = together(
        [
            lambda: summaries.append(run("merge", numbers[:1100])),
            lambda: summaries.append(run("merge", numbers[100:])),
        ]
    )

    assert errors == []
    assert award_table() == rows_of(vendor.objects)
    [(rows,)] = query("SELECT COUNT(*) FROM patsnap_award")
    assert rows == 2 * 1200  # the 1000 patents both shards fetched are upserted, never duplicated
    assert sorted(summary["rows"] for summary in summaries) == [2 * 1100, 2 * 1100]


# --- history ---------------------------------------------------------------------------------------


def test_history_answers_what_was_known_on_two_dates(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    vendor.objects = BEFORE
    first = run("history")
    vendor.objects = AFTER
    clock.now = T2
    second = run("history")

    def known_on(moment: datetime) -> set[tuple[Any, ...]]:
        at = moment.isoformat(timespec="seconds")
        return award_table("WHERE valid_from <= %s AND (valid_to IS NULL OR valid_to > %s)", (at, at))

    assert known_on(T1 + timedelta(days=1)) == rows_of(BEFORE)
    assert known_on(T2 + timedelta(days=1)) == rows_of(AFTER)
    assert known_on(T1 - timedelta(days=1)) == set()
    assert award_table("WHERE is_current = 1") == rows_of(AFTER)
    assert first["versions_opened"] == 4 and first["versions_closed"] == 0
    # CN1A's gold prize changed (closed + opened), its design prize and CN2A's prize vanished (closed).
    assert second["versions_opened"] == 1 and second["versions_closed"] == 3
    assert second["patents_emptied"] == 1
    changed = query(
        "SELECT DISTINCT pn FROM patsnap_award WHERE valid_from > %s OR valid_to > %s",
        (T1.isoformat(timespec="seconds"),) * 2,
    )
    assert sorted(pn for (pn,) in changed) == ["CN1A", "CN2A"]  # which patents changed since the last run


def test_history_refetching_unchanged_data_changes_nothing(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    vendor.objects = BEFORE
    run("history")
    table_before = query("SELECT * FROM patsnap_award ORDER BY version_key")
    clock.now = T3

    again = run("history")

    assert query("SELECT * FROM patsnap_award ORDER BY version_key") == table_before
    assert again["versions_opened"] == again["versions_closed"] == 0
    assert again["rows"] == len(rows_of(BEFORE))


def test_overlapping_history_shards_keep_one_current_version_per_record(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    numbers = [f"CN{n}H" for n in range(1200)]
    vendor.objects = {pn: patent(pn, award("Gold prize")) for pn in numbers}
    run("history", numbers)
    after = {pn: patent(pn, award("Gold prize", referrer="new")) for i, pn in enumerate(numbers) if i % 3}
    vendor.objects = after
    clock.now = T2

    summaries: list[dict[str, Any]] = []

    errors = together(
        [
            lambda: summaries.append(run("history", numbers[:1100])),
            lambda: summaries.append(run("history", numbers[100:])),
        ]
    )

    assert errors == []
    assert award_table("WHERE is_current = 1") == rows_of(after)
    [(versions,)] = query("SELECT COUNT(*) FROM patsnap_award")
    assert versions == 1200 + 800  # every first version, and one new version per changed record
    [(open_versions,)] = query("SELECT COUNT(*) FROM patsnap_award WHERE valid_to IS NULL")
    assert open_versions == 800
    # Each change was seen by exactly one shard: the other found it done.
    assert sum(summary["versions_opened"] for summary in summaries) == 800
    assert sum(summary["versions_closed"] for summary in summaries) == 1200


def test_a_merge_table_is_not_silently_used_for_history(
    vendor: ScriptedVendor, clock: OperatorClock, warehouse: str
) -> None:
    vendor.objects = BEFORE
    run("merge")
    with pytest.raises(Exception, match="version_key"):
        run("history")
