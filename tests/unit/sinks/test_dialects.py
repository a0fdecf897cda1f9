"""The SQL each dialect writes, how a database is chosen from its hook, and which errors are a refused
value or a lost race: no database here (the real engines are in tests/integration/operators/
test_sql_dialects.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from airflow_provider_patsnap.endpoints import Column
from airflow_provider_patsnap.exceptions import PatsnapInputError
from airflow_provider_patsnap.sinks.dialects import (
    DuckDBDialect,
    MySqlDialect,
    PostgresDialect,
    SqlDialect,
    SqliteDialect,
    TableIdentity,
    TableLockTimeoutError,
    UnsupportedDatabaseError,
    database_name,
    dialect_for,
)
from airflow_provider_patsnap.sinks.dialects.duckdb import UnnestUpsert, _process_lock, list_type

COLUMNS = (
    Column("record_key", "VARCHAR(40)"),
    Column("pn", "TEXT"),
    Column("award_level", "VARCHAR(8)"),
    Column("award_year", "INTEGER"),
)
PUBLIC_T = TableIdentity("warehouse", "public", "t")


def upsert_sql(dialect: SqlDialect, columns: Sequence[Column] = COLUMNS) -> str:
    return dialect.upsert(PUBLIC_T, columns, "record_key").sql


@pytest.mark.parametrize(
    ("dialect", "placeholder"), [(PostgresDialect(), "%s"), (SqliteDialect(), "?"), (DuckDBDialect(), "?")]
)
def test_postgres_sqlite_and_duckdb_upsert_on_conflict_in_place(
    dialect: SqlDialect, placeholder: str
) -> None:
    values = ", ".join([placeholder] * 4)
    assert upsert_sql(dialect) == (
        f"INSERT INTO public.t (record_key, pn, award_level, award_year) VALUES ({values}) "
        "ON CONFLICT (record_key) DO UPDATE SET pn = excluded.pn, award_level = excluded.award_level, "
        "award_year = excluded.award_year"
    )


def test_mysql_upserts_on_duplicate_key_with_values_never_replace() -> None:
    sql = upsert_sql(MySqlDialect())
    assert sql == (
        "INSERT INTO public.t (record_key, pn, award_level, award_year) VALUES (%s, %s, %s, %s) "
        "ON DUPLICATE KEY UPDATE pn = VALUES(pn), award_level = VALUES(award_level), "
        "award_year = VALUES(award_year)"
    )
    assert "REPLACE" not in sql


def test_a_table_of_key_columns_only_is_upserted_without_an_update() -> None:
    key_only = COLUMNS[:1]
    assert upsert_sql(PostgresDialect(), key_only).endswith("ON CONFLICT (record_key) DO NOTHING")
    assert upsert_sql(MySqlDialect(), key_only).endswith("ON DUPLICATE KEY UPDATE record_key = record_key")


def test_duckdb_sends_many_rows_as_one_list_a_column() -> None:
    upsert = DuckDBDialect().upsert(PUBLIC_T, COLUMNS, "record_key")
    assert isinstance(upsert, UnnestUpsert)
    assert upsert.bulk_sql == (
        "INSERT INTO public.t (record_key, pn, award_level, award_year) SELECT * FROM (SELECT "
        "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::INTEGER[])) "
        "ON CONFLICT (record_key) DO UPDATE SET pn = excluded.pn, award_level = excluded.award_level, "
        "award_year = excluded.award_year"
    )
    cursor = RecordingCursor()
    upsert.many(cursor, [("k1", "CN1A", "gold", 2020), ("k2", "CN2A", None, None)])
    assert cursor.executed == [
        (upsert.bulk_sql, [["k1", "k2"], ["CN1A", "CN2A"], ["gold", None], [2020, None]])
    ]
    upsert.many(cursor, [])
    assert len(cursor.executed) == 1  # nothing to write, no statement
    assert [list_type(t) for t in ("TEXT", "VARCHAR(40)", "BIGINT", "SMALLINT")] == [
        "VARCHAR[]",
        "VARCHAR[]",
        "BIGINT[]",
        "SMALLINT[]",
    ]


def test_mariadb_tables_are_utf8mb4_innodb_and_others_plain() -> None:
    assert MySqlDialect().create_table_sql(PUBLIC_T, COLUMNS[:2], "record_key") == (
        "CREATE TABLE IF NOT EXISTS public.t (record_key VARCHAR(40), pn TEXT, PRIMARY KEY (record_key)) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )
    for dialect in (PostgresDialect(), SqliteDialect(), DuckDBDialect()):
        assert dialect.create_table_sql(PUBLIC_T, COLUMNS[:2], "record_key") == (
            "CREATE TABLE IF NOT EXISTS public.t (record_key VARCHAR(40), pn TEXT, PRIMARY KEY (record_key))"
        )


def test_index_statements_per_database() -> None:
    pn, level = COLUMNS[1], COLUMNS[2]
    main_t = TableIdentity("/data/w.db", "main", "t")
    assert (
        PostgresDialect().create_index_sql(PUBLIC_T, pn) == "CREATE INDEX IF NOT EXISTS t_pn ON public.t (pn)"
    )
    assert (
        DuckDBDialect().create_index_sql(PUBLIC_T, pn) == "CREATE INDEX IF NOT EXISTS t_pn ON public.t (pn)"
    )
    # SQLite puts the schema on the index, never on the table.
    assert SqliteDialect().create_index_sql(main_t, pn) == "CREATE INDEX IF NOT EXISTS main.t_pn ON t (pn)"
    mariadb = MySqlDialect()
    # MariaDB indexes a TEXT column on a prefix only; a VARCHAR whole.
    assert mariadb.create_index_sql(PUBLIC_T, pn) == "CREATE INDEX IF NOT EXISTS t_pn ON public.t (pn(191))"
    assert mariadb.create_index_sql(PUBLIC_T, level) == (
        "CREATE INDEX IF NOT EXISTS t_award_level ON public.t (award_level)"
    )
    mysql = MySqlDialect()
    mysql.mariadb = False  # MySQL has no CREATE INDEX IF NOT EXISTS
    assert mysql.create_index_sql(PUBLIC_T, pn) == "CREATE INDEX t_pn ON public.t (pn(191))"


def test_a_long_index_name_is_shortened_with_a_hash_to_fit_every_database() -> None:
    long_table = PUBLIC_T._replace(name="a" * 55)
    name = PostgresDialect().index_name(long_table, "patent_id")
    assert len(name) == 63 and name.startswith("a" * 54 + "_")
    assert name != PostgresDialect().index_name(long_table, "patent_ie")
    assert PostgresDialect().index_name(PUBLIC_T, "patent_id") == "t_patent_id"


def test_lists_of_values_bind_as_arrays_on_postgres_and_duckdb_else_as_in_lists() -> None:
    keys = ["a", "b", "c"]
    assert list(PostgresDialect().value_list().chunks("pn", keys)) == [("pn = ANY(%s)", [keys])]
    assert list(DuckDBDialect().value_list().chunks("pn", keys)) == [("pn = ANY(?)", [keys])]
    assert list(SqliteDialect().value_list().chunks("pn", keys)) == [("pn IN (?, ?, ?)", keys)]
    assert list(MySqlDialect().value_list().chunks("pn", keys)) == [("pn IN (%s, %s, %s)", keys)]


def test_which_databases_have_savepoints() -> None:
    assert [d.savepoints for d in (PostgresDialect(), SqliteDialect(), MySqlDialect(), DuckDBDialect())] == [
        True,
        True,
        True,
        False,
    ]


def test_identity_names_the_tables_beside_it_and_keys_locks() -> None:
    assert PUBLIC_T.qualified == "public.t"
    assert PUBLIC_T.with_suffix("_state") == TableIdentity("warehouse", "public", "t_state")
    assert PUBLIC_T.with_suffix("_rejects").qualified == "public.t_rejects"
    assert PUBLIC_T.key != PUBLIC_T._replace(catalog="other").key


def test_names_fold_as_each_database_folds_unquoted_names() -> None:
    assert [d.fold("PATSNAP_Award") for d in (PostgresDialect(), SqliteDialect(), DuckDBDialect())] == [
        "patsnap_award"
    ] * 3
    mysql = MySqlDialect()
    assert mysql.fold("PATSNAP_Award") == "PATSNAP_Award"  # lower_case_table_names = 0: as written
    mysql.case_sensitive = False
    assert mysql.fold("PATSNAP_Award") == "patsnap_award"


# ---- choosing the dialect ------------------------------------------------------------------------


class FakeHook:
    def __init__(self, dialect_name: str, conn_type: str = "", extra: dict[str, Any] | None = None) -> None:
        self.dialect_name = dialect_name
        self.conn_type = conn_type
        self.connection_extra = extra or {}

    def get_conn(self) -> None:
        raise AssertionError("choosing a dialect must not connect")


@pytest.mark.parametrize(
    ("dialect_name", "conn_type", "expected"),
    [
        ("postgresql", "postgres", PostgresDialect),
        ("sqlite", "sqlite", SqliteDialect),
        ("mysql", "mysql", MySqlDialect),  # mysqlclient and mysql-connector-python alike
        ("mariadb", "mysql", MySqlDialect),
        ("duckdb", "duckdb", DuckDBDialect),
        ("default", "duckdb", DuckDBDialect),  # no dialect name: the conn_type decides
    ],
)
def test_the_dialect_follows_the_hooks_database(
    dialect_name: str, conn_type: str, expected: type[SqlDialect]
) -> None:
    assert type(dialect_for(FakeHook(dialect_name, conn_type))) is expected


def test_each_sink_gets_a_dialect_of_its_own() -> None:
    hook = FakeHook("mysql")
    assert dialect_for(hook) is not dialect_for(hook)  # it holds the sink's session locks


class BrokenUriHook(FakeHook):
    @property  # type: ignore[override]
    def dialect_name(self) -> str:
        raise ValueError("no host")

    @dialect_name.setter
    def dialect_name(self, value: str) -> None:
        pass


def test_a_hook_whose_uri_cannot_be_built_is_named_by_its_conn_type() -> None:
    assert database_name(BrokenUriHook("", "sqlite")) == "sqlite"


@pytest.mark.parametrize(
    ("hook", "named"),
    [
        (FakeHook("snowflake", "snowflake"), "snowflake"),
        (FakeHook("bigquery", "gcpbigquery"), "bigquery"),
        (FakeHook("mssql", "mssql"), "mssql"),
        (FakeHook("databricks", "databricks"), "databricks"),
        (FakeHook("postgresql", "postgres", {"redshift": True}), "redshift"),
        (FakeHook("default", ""), "unknown"),
    ],
)
def test_another_database_is_refused_before_any_call_naming_it_and_the_recipes(
    hook: FakeHook, named: str
) -> None:
    with pytest.raises(UnsupportedDatabaseError) as raised:
        dialect_for(hook, "warehouse")
    message = str(raised.value)
    assert f"connection 'warehouse' is a {named} database (FakeHook)" in message
    assert "SQLite, PostgreSQL, MySQL/MariaDB and DuckDB" in message
    recipes = "docs/destinations.md#cloud-warehouses-parquet-then-their-own-loaders"
    assert f"{recipes} (Snowflake, BigQuery, Redshift, Databricks)" in message
    assert "REPLACE" not in message
    assert isinstance(raised.value, PatsnapInputError)  # fails the task at once, no retry


# ---- errors --------------------------------------------------------------------------------------


def driver_error(
    class_name: str, *args: Any, bases: tuple[type, ...] = (Exception,), **attrs: Any
) -> Exception:
    """An exception of a class named like the driver's (the dialects look at names and codes only)."""
    error = type(class_name, bases, {})(*args)
    for name, value in attrs.items():
        setattr(error, name, value)
    return error


def test_mysql_refused_values_are_data_errors_whatever_class_the_driver_picks() -> None:
    dialect = MySqlDialect()
    data_error = type("DataError", (Exception,), {})
    # mysqlclient: errno in args[0]; 1366 arrives as an OperationalError.
    assert dialect.is_data_error(
        driver_error("DataError", 1406, "Data too long for column 'v'", bases=(data_error,))
    )
    assert dialect.is_data_error(driver_error("DataError", 1264, "Out of range value", bases=(data_error,)))
    assert dialect.is_data_error(driver_error("OperationalError", 1366, "Incorrect integer value: 'abc'"))
    assert dialect.is_data_error(driver_error("IntegrityError", 1048, "Column 'k' cannot be null"))
    # mysql-connector-python: errno attribute; a value it cannot encode is a ProgrammingError -1.
    assert dialect.is_data_error(driver_error("DataError", 1406, "too long", errno=1406, sqlstate="22001"))
    assert dialect.is_data_error(
        driver_error(
            "ProgrammingError", -1, "Failed processing format-parameters; 'utf-8' codec can't encode"
        )
    )
    assert dialect.is_data_error(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert not dialect.is_data_error(driver_error("OperationalError", 2013, "Lost connection to server"))
    assert not dialect.is_data_error(driver_error("ProgrammingError", 1064, "You have an error in your SQL"))


def test_mysql_deadlocks_and_lock_waits_are_written_again_not_rejected() -> None:
    dialect = MySqlDialect()
    for errno in (1213, 1205):
        error = driver_error("OperationalError", errno, "Deadlock found")
        assert dialect.is_retryable(error) and not dialect.is_data_error(error)
    assert dialect.is_retryable(TableLockTimeoutError("not granted"))
    assert not dialect.is_retryable(driver_error("OperationalError", 2013, "Lost connection"))


def test_postgres_errors_by_sqlstate() -> None:
    dialect = PostgresDialect()
    assert dialect.is_data_error(driver_error("StringDataRightTruncation", "too long", sqlstate="22001"))
    assert dialect.is_data_error(driver_error("UniqueViolation", "dup", pgcode="23505"))  # psycopg2
    assert dialect.is_retryable(driver_error("DeadlockDetected", "deadlock", sqlstate="40P01"))
    assert dialect.is_retryable(driver_error("SerializationFailure", "x", sqlstate="40001"))
    assert not dialect.is_retryable(driver_error("UndefinedTable", "x", sqlstate="42P01"))


def test_sqlite_busy_is_retryable() -> None:
    dialect = SqliteDialect()
    assert dialect.is_retryable(driver_error("OperationalError", "database is locked"))
    assert not dialect.is_retryable(driver_error("OperationalError", "no such table: t"))
    assert dialect.is_data_error(OverflowError("Python int too large to convert to SQLite INTEGER"))


def test_duckdb_conversions_are_data_errors_and_conflicts_retryable() -> None:
    dialect = DuckDBDialect()
    data_error = type("DataError", (Exception,), {})
    assert dialect.is_data_error(
        driver_error("ConversionException", "out of range for INT16", bases=(data_error,))
    )
    assert dialect.is_data_error(
        driver_error("InvalidInputException", "Python Conversion Failure: cannot encode str as UTF-8")
    )
    assert not dialect.is_data_error(driver_error("InvalidInputException", "something else"))
    assert dialect.is_retryable(
        driver_error("TransactionException", "TransactionContext Error: Conflict on update!")
    )
    assert not dialect.is_retryable(
        driver_error("TransactionException", "Current transaction is aborted (please ROLLBACK)")
    )


# ---- locks ---------------------------------------------------------------------------------------


class RecordingCursor:
    """Records statements; answers each fetch with the next of ``answers``."""

    def __init__(self, *answers: Any) -> None:
        self.executed: list[tuple[str, Any]] = []
        self.answers = list(answers)

    def execute(self, sql: str, parameters: Any = None) -> None:
        self.executed.append((sql, parameters))

    def fetchone(self) -> Any:
        return self.answers.pop(0)

    def fetchall(self) -> list[Any]:
        return []

    def close(self) -> None:
        pass


class RecordingConnection:
    def __init__(self, cursor: RecordingCursor) -> None:
        self._cursor = cursor
        self.calls: list[str] = []

    def cursor(self) -> RecordingCursor:
        return self._cursor

    def commit(self) -> None:
        self.calls.append("commit")

    def rollback(self) -> None:
        self.calls.append("rollback")


def test_the_postgres_lock_is_keyed_on_the_resolved_identity() -> None:
    def lock_key(identity: TableIdentity) -> Any:
        cursor = RecordingCursor()
        PostgresDialect().lock_table(cursor, identity)
        [(sql, parameters)] = cursor.executed
        assert sql == "SELECT pg_advisory_xact_lock(%s)"
        return parameters

    assert lock_key(PUBLIC_T) == lock_key(TableIdentity("warehouse", "public", "t"))
    assert lock_key(PUBLIC_T) != lock_key(PUBLIC_T._replace(schema="enrich"))
    assert lock_key(PUBLIC_T) != lock_key(PUBLIC_T._replace(catalog="other_db"))


def test_mysql_get_lock_is_released_at_commit_and_at_rollback() -> None:
    for end in ("commit", "rollback"):
        dialect = MySqlDialect()
        cursor = RecordingCursor((1,), (1,))
        connection = RecordingConnection(cursor)
        dialect.begin(connection, cursor, PUBLIC_T)
        dialect.lock_table(cursor, PUBLIC_T)  # again in the same write: held once, released once
        getattr(dialect, end)(connection)
        name = dialect.lock_name(PUBLIC_T)
        assert len(name) <= 64  # MySQL's limit for lock names
        assert (
            cursor.executed[0][1] == (name, name)
            and "GET_LOCK(%s, @@lock_wait_timeout)" in cursor.executed[0][0]
        )
        assert cursor.executed[2:] == [("SELECT RELEASE_LOCK(%s)", (name,))]
        assert connection.calls == [end]
        getattr(dialect, end)(connection)  # nothing held: nothing released
        assert len(cursor.executed) == 3


def test_mysql_lock_not_granted_in_time_is_a_retryable_error() -> None:
    dialect = MySqlDialect()
    with pytest.raises(TableLockTimeoutError) as raised:
        dialect.lock_table(RecordingCursor((0,)), PUBLIC_T)
    assert dialect.is_retryable(raised.value)
    with pytest.raises(RuntimeError, match="answered NULL"):
        dialect.lock_table(RecordingCursor((None,)), PUBLIC_T)


def test_duckdb_writes_of_one_file_take_turns_until_commit_or_rollback() -> None:
    """One process-wide lock per file, for every write (``merge`` too): two transactions of one process
    writing one table would conflict, or take a key both inserted for a refused value."""
    first, second = DuckDBDialect(), DuckDBDialect()
    first._database = second._database = "/data/w.duckdb"
    lock = _process_lock("/data/w.duckdb")
    for end in ("commit", "rollback"):
        for table in (PUBLIC_T, None):  # sync/history, merge
            cursor = RecordingCursor()
            connection = RecordingConnection(cursor)
            first.begin(connection, cursor, table)
            assert cursor.executed == [("BEGIN TRANSACTION", None)] and lock.locked()
            assert not lock.acquire(blocking=False)  # what `second` would wait for
            getattr(first, end)(connection)
            assert not lock.locked()
    second.begin(connection, RecordingCursor(), None)
    assert lock.locked()
    second.commit(connection)
    assert not lock.locked()


def test_duckdb_rollback_without_a_transaction_is_not_an_error() -> None:
    class NoTransaction(RecordingConnection):
        def rollback(self) -> None:
            raise RuntimeError("TransactionContext Error: cannot rollback - no transaction is active")

    DuckDBDialect().rollback(NoTransaction(RecordingCursor()))
