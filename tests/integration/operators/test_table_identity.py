"""One table, one identity: two shards writing one PostgreSQL table under two spellings (``t`` and
``public.t``, ``T``) take one lock, share one state table, and report one destination and one lineage
name.

The interleaving is forced, not hoped for. Shard B opens its table first and its fetch is held by the
vendor. Shard A then fetches and writes, and a trigger makes A's insert of a marked row wait on an
advisory lock the test holds: A stops inside its transaction (its table lock taken, its deletes and
closes done, nothing committed). B's answer, a later one, is released: B must wait for A's commit
before it reads the table. The test sees B waiting (on a lock, in pg_stat_activity), lets A go, and
checks that B's answer is what the table holds. With a lock keyed on the name as written, B does not
wait for A's lock: it reads the table before A commits and leaves A's marked row behind (sync) or a
second current version (history).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_patsnap._compat import AIRFLOW_V_3, BaseHook
from airflow_provider_patsnap.operators import _batch
from airflow_provider_patsnap.operators.patsnap import PatsnapAwardOperator
from tests.helpers import CONN_ENV, OperatorClock, ScriptedVendor, fresh_postgres_database
from tests.sql_engines import wait_until

T1 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
T3 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PAUSE_LOCK = 4242  # the advisory lock the trigger waits on while the test holds it
MARKED = "Design prize"  # inserting a row of this award stops shard A


def award(name: str) -> dict[str, Any]:
    return {"award_name": name, "award_level": "gold", "award_session": "2020", "award_referrer": "office"}


def patent(*awards: dict[str, Any]) -> dict[str, Any]:
    return {"pn": "CN1A", "patent_id": "id-CN1A", "patent_award_data": list(awards)}


# Shard A asks for CN1A, shard B for cn1a: one patent (PatSnap echoes CN1A), two answers.
FIRST = {"CN1A": patent(award("Old prize"))}
ANSWERS = {
    "CN1A": patent(award("Gold prize"), award(MARKED)),  # A's: fetched first, committed first
    "cn1a": patent(award("Gold prize")),  # B's: fetched later, committed last, the table's truth
}


class HeldVendor(ScriptedVendor):
    """Holds its answer to a request for ``cn1a`` until :attr:`release` is set (:attr:`arrived`: it came)."""

    def __init__(self) -> None:
        self.arrived, self.release = threading.Event(), threading.Event()
        super().__init__()

    def _answer(self, connection: Any, request: Any) -> None:
        if "cn1a" in request.query.get("patent_number", "").split(","):
            self.arrived.set()
            self.release.wait(timeout=60)
        super()._answer(connection, request)


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldVendor]:
    scripted = HeldVendor()
    monkeypatch.setenv(CONN_ENV, scripted.connection_json())
    yield scripted
    scripted.release.set()
    scripted.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> OperatorClock:
    fake = OperatorClock(T1)
    monkeypatch.setattr(_batch, "utc_now", fake)
    return fake


@pytest.fixture
def warehouse(postgres_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A connection id ``ti`` to an empty PostgreSQL database; returns its psycopg settings."""
    import json

    conn = fresh_postgres_database(postgres_server)
    monkeypatch.setenv("AIRFLOW_CONN_TI", conn)
    settings = json.loads(conn)
    return {
        "host": settings["host"],
        "port": settings["port"],
        "user": settings["login"],
        "dbname": settings["schema"],
    }


def awards_operator(table: str, mode: str, patent_number: str = "CN1A") -> PatsnapAwardOperator:
    return PatsnapAwardOperator(
        task_id="awards", patent_numbers=[patent_number], sql_conn_id="ti", table=table, write_mode=mode
    )


def execute_in_thread(op: PatsnapAwardOperator, results: dict[str, Any], name: str) -> threading.Thread:
    def work() -> None:
        if not AIRFLOW_V_3:  # Airflow 2.11's execute guard keeps a thread-local only its importer has
            from airflow.models.baseoperator import ExecutorSafeguard

            if not hasattr(ExecutorSafeguard._sentinel, "callers"):
                ExecutorSafeguard._sentinel.callers = {}
        try:
            results[name] = op.execute(context={})
        except BaseException as error:  # reported to the test, which fails on it
            results[name] = error

    thread = threading.Thread(target=work, name=name)
    thread.start()
    return thread


def query(sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in BaseHook.get_connection("ti").get_hook().get_records(sql)]


def waiting_on_locks(watcher: Any, dbname: str, event: str | None = None) -> int:
    sql = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
    parameters: list[Any] = [dbname]
    if event is not None:
        sql += " AND wait_event = %s"
        parameters.append(event)
    return int(watcher.execute(sql, parameters).fetchone()[0])


def pause_marked_inserts(admin: Any) -> None:
    """A trigger: inserting the marked award waits while the test holds :data:`PAUSE_LOCK`."""
    admin.execute(
        f"""
        CREATE FUNCTION pause_marked() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.award_name = '{MARKED}' THEN
                PERFORM pg_advisory_lock_shared({PAUSE_LOCK});
                PERFORM pg_advisory_unlock_shared({PAUSE_LOCK});
            END IF;
            RETURN NEW;
        END $$
        """
    )
    admin.execute(
        "CREATE TRIGGER pause_marked BEFORE INSERT ON public.patsnap_award "
        "FOR EACH ROW EXECUTE FUNCTION pause_marked()"
    )


@pytest.mark.parametrize("mode", ["sync", "history"])
@pytest.mark.parametrize(
    ("spelling_a", "spelling_b"),
    [
        ("patsnap_award", "public.patsnap_award"),
        ("PATSNAP_AWARD", "patsnap_award"),
        ("public.Patsnap_Award", "PATSNAP_AWARD"),
    ],
)
def test_two_spellings_of_one_table_write_one_after_the_other(
    vendor: HeldVendor,
    clock: OperatorClock,
    warehouse: dict[str, Any],
    mode: str,
    spelling_a: str,
    spelling_b: str,
) -> None:
    import psycopg

    vendor.objects = FIRST
    awards_operator("patsnap_award", mode).execute(context={})
    holder = psycopg.connect(**warehouse, autocommit=True)
    watcher = psycopg.connect(**warehouse, autocommit=True)
    results: dict[str, Any] = {}
    threads: list[threading.Thread] = []
    try:
        pause_marked_inserts(holder)
        holder.execute("SELECT pg_advisory_lock(%s)", (PAUSE_LOCK,))
        vendor.objects, clock.now = ANSWERS, T2
        shard_b = awards_operator(spelling_b, mode, "cn1a")
        threads.append(execute_in_thread(shard_b, results, "b"))
        assert vendor.arrived.wait(timeout=60), "B never asked for its patent"  # B's table is open
        shard_a = awards_operator(spelling_a, mode)
        threads.append(execute_in_thread(shard_a, results, "a"))
        dbname = warehouse["dbname"]
        wait_until(lambda: waiting_on_locks(watcher, dbname, "advisory") == 1, "A stopped in its insert")
        clock.now = T3
        vendor.release.set()  # B lands the later answer while A holds its write
        wait_until(lambda: waiting_on_locks(watcher, dbname) == 2, "B waited for A")
    finally:
        holder.execute("SELECT pg_advisory_unlock_all()")
        vendor.release.set()
        for thread in threads:
            thread.join(timeout=60)
        holder.close()
        watcher.close()

    assert not [value for value in results.values() if isinstance(value, BaseException)], results
    awards = "SELECT award_name FROM patsnap_award"
    if mode == "sync":
        # B committed last: the table holds B's answer, and nothing B's answer no longer holds.
        assert query(awards) == [("Gold prize",)]
    else:
        current = query(f"{awards} WHERE is_current = 1")
        assert current == [("Gold prize",)]  # one current version per record, B's answer
        [(record_keys, versions)] = query(
            "SELECT COUNT(DISTINCT record_key), COUNT(*) FROM patsnap_award WHERE is_current = 1"
        )
        assert record_keys == versions == 1
    # One identity: one destination, one lineage name, one state table and one rejects table.
    assert results["a"]["destination"] == results["b"]["destination"] == "ti:public.patsnap_award"
    names = {op._lineage_run.destination.name for op in (shard_a, shard_b)}  # type: ignore[union-attr]
    assert names == {f"{warehouse['dbname']}.public.patsnap_award"}
    tables = query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    assert tables == [
        ("patsnap_award",),
        ("patsnap_award_rejects",),
        ("patsnap_award_state",),
        ("patsnap_runs",),  # the schema's run records (sinks/runs.py), one table for every PatSnap table
    ]
