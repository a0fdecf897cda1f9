"""MariaDB (Debian 12's 10.11, started by the tests) through the Airflow MySQL provider, with both of its
clients: updates in place, utf8mb4 end to end, refused values one row at a time, races retried."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from airflow_provider_patsnap.sinks.dialects import MySqlDialect
from tests.mariadb_server import fresh_mariadb_database
from tests.sql_engines import COLUMNS, KEY, Sessions

CLIENTS = {
    "mysqlclient": {"charset": "utf8mb4"},
    "mysql-connector-python": {"client": "mysql-connector-python"},
    "mysqlclient-utf8mb3": {"charset": "utf8"},  # a 3-byte connection: prepare() makes it utf8mb4
}
TEXTS = ["专利权人", "emoji 😀 and 🧪", "CJK extension B 𠀀𪜀", "Ünïcödé ß", "a\tb\nc"]


@pytest.fixture(params=list(CLIENTS))
def maria(
    request: pytest.FixtureRequest, mariadb_server: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sessions]:
    """Sessions on a fresh database, through each client the MySQL hook offers."""
    settings = json.loads(fresh_mariadb_database(mariadb_server))
    settings["extra"] = CLIENTS[request.param]
    monkeypatch.setenv("AIRFLOW_CONN_MARIA", json.dumps(settings))
    sessions = Sessions("maria", "mariadb")
    yield sessions
    sessions.close()


def test_the_hook_is_the_mysql_providers_and_the_server_mariadb(maria: Sessions) -> None:
    session = maria.open()
    assert type(session.dialect) is MySqlDialect and session.dialect.mariadb
    assert session.dialect.case_sensitive  # lower_case_table_names = 0 on Linux
    settings = session.query(
        "SELECT @@character_set_client, @@character_set_connection, @@character_set_results, "
        "@@tx_isolation, @@autocommit, FIND_IN_SET('STRICT_ALL_TABLES', @@sql_mode) > 0"
    )
    assert settings == [("utf8mb4", "utf8mb4", "utf8mb4", "READ-COMMITTED", 0, 1)]


def test_the_upsert_keeps_the_rows_identity_and_counts_updates_not_deletes(maria: Sessions) -> None:
    """An AUTO_INCREMENT id survives the upsert; the server counts 2 per updated row, 0 per unchanged
    row (``REPLACE`` would give a new id, and the test shows it does). The upsert still uses up an id
    per row it updates (InnoDB reserves them before it finds the duplicate)."""
    session = maria.open()
    table = session.create("awards")
    session.ddl(f"ALTER TABLE {table.qualified} ADD COLUMN row_id BIGINT AUTO_INCREMENT UNIQUE")
    upsert = session.dialect.upsert(table, COLUMNS, KEY)
    affected = []
    for rows in (
        [("k1", "CN1A", "gold", 2020), ("k2", "CN2A", "silver", 2021)],  # 2 inserted: 1 each
        [("k1", "CN1A", "bronze", 2022), ("k2", "CN2A", "silver", 2021)],  # 1 updated (2), 1 unchanged (0)
    ):
        with session.dialect.cursor(session.connection) as cursor:
            upsert.many(cursor, rows)
            affected.append(cursor.rowcount)
        session.dialect.commit(session.connection)
    assert affected == [2, 2]
    ids = f"SELECT {KEY}, award_level, row_id FROM {table.qualified} ORDER BY {KEY}"
    assert session.query(ids) == [("k1", "bronze", 1), ("k2", "silver", 2)]
    session.run(f"REPLACE INTO {table.qualified} ({KEY}, pn) VALUES (%s, %s)", ("k1", "CN1A"))
    key, level, row_id = session.query(ids)[0]
    assert (key, level) == ("k1", None) and row_id > 2  # what the upsert avoids: a new row, values lost


def test_four_byte_utf8_round_trips(maria: Sessions) -> None:
    session = maria.open()
    table = session.create("texts")
    collation = session.query(
        "SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (table.schema, table.name),
    )
    assert collation == [("utf8mb4_bin",)]
    upsert = session.dialect.upsert(table, COLUMNS, KEY)
    rows = [(f"k{number}", text, "gold", 2020) for number, text in enumerate(TEXTS)]
    with session.dialect.cursor(session.connection) as cursor:
        upsert.many(cursor, rows[:3])
        upsert.one(cursor, rows[3])
        upsert.one(cursor, rows[4])
    session.dialect.commit(session.connection)
    assert session.query(f"SELECT {KEY}, pn FROM {table.qualified} ORDER BY {KEY}") == [
        (key, text) for key, text, _, _ in rows
    ]
    assert session.query(f"SELECT {KEY} FROM {table.qualified} WHERE pn = %s", (TEXTS[1],)) == [("k1",)]


REFUSED = [
    (("k2", "CN2A", "much too long", 2020), 1406),  # VARCHAR(8)
    (("k3", "CN3A", "gold", 70000), 1264),  # SMALLINT
    (("k4", "CN4A", "gold", "MMXX"), 1366),  # not an integer (mysqlclient: an OperationalError)
]


def test_refused_values_are_data_errors_even_on_a_lax_session_and_refuse_one_row(maria: Sessions) -> None:
    """A session whose sql_mode is empty would store the values cut short; prepare() makes it strict.
    Written one row at a time in savepoints, the refused rows go and the others land."""
    session = maria.open()
    table = session.create("refusals")
    session.ddl("SET SESSION sql_mode = ''")
    session.dialect.prepare(session.connection)
    upsert = session.dialect.upsert(table, COLUMNS, KEY)
    good = [("k1", "CN1A", "gold", 2020), ("k5", "CN5A", "silver", 2021)]
    refused: dict[str, int | None] = {}
    with session.dialect.cursor(session.connection) as cursor:
        cursor.execute("SAVEPOINT patsnap_batch")
        for values in [good[0], *(row for row, _ in REFUSED), good[1]]:
            cursor.execute("SAVEPOINT patsnap_row")
            try:
                upsert.one(cursor, values)
            except Exception as error:
                assert session.dialect.is_data_error(error), repr(error)
                assert not session.dialect.is_retryable(error)
                cursor.execute("ROLLBACK TO SAVEPOINT patsnap_row")
                refused[values[0]] = getattr(error, "errno", None) or error.args[0]
            cursor.execute("RELEASE SAVEPOINT patsnap_row")
        cursor.execute("RELEASE SAVEPOINT patsnap_batch")
    session.dialect.commit(session.connection)
    assert refused == {row[0]: errno for row, errno in REFUSED}
    assert session.query(f"SELECT {KEY}, award_level FROM {table.qualified} ORDER BY {KEY}") == [
        ("k1", "gold"),
        ("k5", "silver"),
    ]


def test_a_deadlock_is_retryable(maria: Sessions) -> None:
    """Two writers taking two rows in opposite orders: the server picks a victim (1213), which the
    dialect says to write again. Whichever second update comes first waits for the other, which then
    closes the cycle: no need to watch for the wait (information_schema.INNODB_TRX would not show it
    to a tight loop anyway: InnoDB refreshes that table only when it was not read for 0.1 s)."""
    a, b = maria.open(), maria.open()
    table = a.create("deadlock")
    a.run(f"INSERT INTO {table.qualified} ({KEY}) VALUES ('r1'), ('r2')")
    update = f"UPDATE {table.qualified} SET award_level = %s WHERE {KEY} = %s"
    cursor_a, cursor_b = a.connection.cursor(), b.connection.cursor()
    cursor_a.execute(update, ("a", "r1"))
    cursor_b.execute(update, ("b", "r2"))
    errors: list[BaseException] = []

    def second_update_of_a() -> None:
        try:
            cursor_a.execute(update, ("a", "r2"))  # waits for B's row, or B waits for A's
        except Exception as error:
            errors.append(error)

    thread = threading.Thread(target=second_update_of_a)
    thread.start()
    try:
        cursor_b.execute(update, ("b", "r1"))  # closes the cycle
    except Exception as error:
        errors.append(error)
    thread.join(timeout=60)
    [victim] = [error for error in errors if b.dialect.is_retryable(error)]
    assert not b.dialect.is_data_error(victim)
    for session in (a, b):
        session.dialect.rollback(session.connection)


def test_get_lock_is_released_by_commit_and_rollback_even_when_taken_twice(maria: Sessions) -> None:
    a, b = maria.open(), maria.open()
    table = a.resolve("locked")
    name = a.dialect.lock_name(table)
    for end in ("commit", "rollback"):
        with a.dialect.cursor(a.connection) as cursor:
            a.dialect.begin(a.connection, cursor, table)
            a.dialect.lock_table(cursor, table)
        assert b.query("SELECT IS_USED_LOCK(%s) IS NOT NULL", (name,)) == [(1,)]
        getattr(a.dialect, end)(a.connection)
        assert b.query("SELECT IS_USED_LOCK(%s)", (name,)) == [(None,)]


def test_names_are_case_sensitive_and_the_schema_is_the_database(maria: Sessions) -> None:
    session = maria.open()
    database = session.query("SELECT DATABASE()")[0][0]
    assert session.resolve("PATSNAP_AWARD").name == "PATSNAP_AWARD"  # as MariaDB stores it on Linux
    assert session.resolve("t") == session.resolve(f"{database}.t") == ("", database, "t")
    assert session.resolve("other_db.t").schema == "other_db"
