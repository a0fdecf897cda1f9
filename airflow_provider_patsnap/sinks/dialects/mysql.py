"""MySQL and MariaDB (the MySQL provider's hook: mysqlclient, or mysql-connector-python with the
connection's ``client`` extra): ``ON DUPLICATE KEY UPDATE``, a ``GET_LOCK`` per table, utf8mb4 end to end.

The schema is the database (``DATABASE()`` when the name has none); names are compared as
``@@lower_case_table_names`` says (0, Linux's default: as written, case-sensitive; 1 and 2: lower case).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_patsnap.endpoints import Column
from airflow_provider_patsnap.exceptions import PatsnapInputError, TableLockTimeoutError
from airflow_provider_patsnap.sinks.dialects.base import (
    SqlDialect,
    TableIdentity,
    TableShape,
    Upsert,
    driver_errno,
    lock_digest,
)

# Values the server refuses (strict mode): too long, out of range, an incorrect (string) value, truncated,
# NULL in a NOT NULL column, a duplicate in another unique key, a failed CHECK constraint.
DATA_ERRNOS = frozenset({1048, 1062, 1264, 1265, 1292, 1366, 1367, 1406, 1690, 3819, 4025})
# Deadlock, lock wait timeout (InnoDB rolls back the statement only; the sink rolls back the write), and
# MariaDB 11's "record has changed since last read" under innodb_snapshot_isolation.
RETRYABLE_ERRNOS = frozenset({1020, 1205, 1213})
INDEX_PREFIX = 191  # characters of a TEXT column an index keeps (191 x 4 bytes fits every row format)
COLLATION = "utf8mb4_bin"  # compares as PostgreSQL does: case and accents matter


class MySqlDialect(SqlDialect):
    name = "mysql"
    label = "MySQL/MariaDB"
    table_options = f" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={COLLATION}"

    def __init__(self, placeholder: str | None = None) -> None:
        super().__init__(placeholder)
        self.mariadb = True  # until prepare() reads the server's version
        self.case_sensitive = True  # @@lower_case_table_names = 0, until prepare() or resolve_table()
        self._held: list[str] = []

    def fold(self, name: str) -> str:
        return name if self.case_sensitive else name.lower()

    def prepare(self, connection: Any) -> None:
        """utf8mb4 on the connection (the driver's own call, so the driver encodes as the server decodes),
        strict mode (a refused value is an error, never a silent truncation), READ COMMITTED (each
        statement sees what other writers committed, as on PostgreSQL), no autocommit."""
        for method in ("set_character_set", "set_charset_collation"):  # mysqlclient / PyMySQL, connector
            if hasattr(connection, method):
                getattr(connection, method)("utf8mb4")
                break
        cursor = connection.cursor()
        try:
            if not hasattr(connection, "set_character_set") and not hasattr(
                connection, "set_charset_collation"
            ):
                cursor.execute("SET NAMES utf8mb4")
            cursor.execute("SET SESSION autocommit = 0")
            cursor.execute(
                "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')"
            )
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cursor.execute("SELECT VERSION(), @@lower_case_table_names")
            version, lower_case = cursor.fetchone()
        finally:
            cursor.close()
        connection.commit()
        self.mariadb = "mariadb" in str(version).lower()
        self.case_sensitive = int(lower_case) == 0

    def resolve_table(self, cursor: Any, table: str) -> TableIdentity:
        cursor.execute("SELECT DATABASE(), @@lower_case_table_names")
        current, lower_case = cursor.fetchone()
        self.case_sensitive = int(lower_case) == 0
        written_schema, _, written_name = table.rpartition(".")
        schema = written_schema or current
        if not schema:
            raise PatsnapInputError(
                f"table {table!r}: the connection names no database (its schema field is empty): "
                "set it, or name the database (database.table)"
            )
        return TableIdentity("", self.fold(str(schema)), self.fold(written_name))

    def lock_name(self, identity: TableIdentity) -> str:
        """Server-wide and at most 64 characters: a hash of the identity, which names the database."""
        return f"patsnap:{lock_digest(identity).hex()}"

    def lock_table(self, cursor: Any, identity: TableIdentity) -> None:
        """``GET_LOCK``, waiting up to ``@@lock_wait_timeout`` (MariaDB answers NULL to a negative wait).
        It belongs to the session, not the transaction: :meth:`commit` and :meth:`rollback` release it.
        A session that holds it already does not take it twice (MySQL counts each GET_LOCK)."""
        name = self.lock_name(identity)
        cursor.execute(
            "SELECT CASE WHEN IS_USED_LOCK(%s) = CONNECTION_ID() THEN 1 "
            "ELSE GET_LOCK(%s, @@lock_wait_timeout) END",
            (name, name),
        )
        (granted,) = cursor.fetchone()
        if granted == 1:
            if name not in self._held:
                self._held.append(name)
            return
        if granted == 0:
            raise TableLockTimeoutError(f"the write lock of {identity.qualified} was not granted in time")
        raise RuntimeError(f"GET_LOCK for {identity.qualified} failed (the server answered NULL)")

    def release_locks(self, connection: Any) -> None:
        if not self._held:
            return
        held, self._held = self._held, []
        cursor = connection.cursor()
        try:
            for name in held:
                cursor.execute("SELECT RELEASE_LOCK(%s)", (name,))
                cursor.fetchall()
        finally:
            cursor.close()

    def rollback(self, connection: Any) -> None:
        try:
            connection.rollback()
        finally:
            try:
                self.release_locks(connection)
            except Exception:  # a broken connection: the server releases the lock when the session ends
                pass

    def create_index_sql(
        self, identity: TableIdentity, column: Column, shape: TableShape | None = None
    ) -> str:
        """A TEXT column is indexed on its first :data:`INDEX_PREFIX` characters (MySQL and MariaDB index
        no TEXT whole); a column an existing table holds as VARCHAR (a table of release 0.1: ``pn
        VARCHAR(64)``) whole, as a prefix longer than the column is refused (error 1089). MySQL has no
        ``CREATE INDEX IF NOT EXISTS``: there the sink's check of an existing index (the statement fails,
        the index is found) does the same."""
        text = column.name in shape.text_columns if shape is not None else column.sql_type.upper() == "TEXT"
        width = f"({INDEX_PREFIX})" if text else ""
        exists = "IF NOT EXISTS " if self.mariadb else ""
        index = self.index_name(identity, column.name)
        return f"CREATE INDEX {exists}{index} ON {identity.qualified} ({column.name}{width})"

    def describe(self, cursor: Any, identity: TableIdentity) -> TableShape | None:
        where = "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
        cursor.execute(
            f"SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS {where}", identity[1:]
        )
        # information_schema compares names without case: keep the table's own rows.
        found = {
            str(column).lower(): str(data_type).lower()
            for table, column, data_type in cursor.fetchall()
            if self._same(table, identity)
        }
        if not found:
            return None
        cursor.execute(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS "
            f"{where} ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            identity[1:],
        )
        columns: dict[str, list[str]] = {}
        unique: set[str] = set()
        for table, index, non_unique, column in cursor.fetchall():
            if self._same(table, identity):
                columns.setdefault(str(index), []).append(str(column).lower())
                if not int(non_unique):
                    unique.add(str(index))
        indexes = {name: tuple(names) for name, names in columns.items()}
        return TableShape(
            frozenset(found),
            frozenset(indexes[name] for name in unique),
            frozenset(indexes.values()),
            frozenset(column for column, data_type in found.items() if data_type.endswith(("text", "blob"))),
        )

    def _same(self, table: Any, identity: TableIdentity) -> bool:
        return str(table) == identity.name if self.case_sensitive else str(table).lower() == identity.name

    def upsert(self, identity: TableIdentity, columns: Any, key: str) -> Upsert:
        """``ON DUPLICATE KEY UPDATE col = VALUES(col)``: the row is updated in place (``REPLACE`` would
        delete and re-insert it). MariaDB has no other form; MySQL 8.0.20+ deprecates ``VALUES()`` in
        favour of a row alias, which mysqlclient's and PyMySQL's ``executemany`` would no longer send
        as one multi-row statement. It fires on a conflict with any unique key: the tables the sink
        creates have one."""
        names = [column.name for column in columns]
        updates = ", ".join(f"{name} = VALUES({name})" for name in names if name != key) or f"{key} = {key}"
        sql = (
            f"INSERT INTO {identity.qualified} ({', '.join(names)}) "
            f"VALUES ({', '.join([self.placeholder] * len(names))}) ON DUPLICATE KEY UPDATE {updates}"
        )
        return Upsert(sql, columns, key)

    def is_data_error(self, error: BaseException) -> bool:
        if driver_errno(error) in DATA_ERRNOS:
            return True
        if driver_errno(error) == -1 and "codec can't encode" in str(error):
            return True  # mysql-connector-python could not encode a value (a lone surrogate)
        return super().is_data_error(error) and driver_errno(error) not in RETRYABLE_ERRNOS

    def is_retryable(self, error: BaseException) -> bool:
        return super().is_retryable(error) or driver_errno(error) in RETRYABLE_ERRNOS
