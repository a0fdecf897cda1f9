"""Where the patents of a data task come from: a list, a SQL query, or files in object storage.

A list is what a task is given today (a literal, a template, an upstream XCom). A query or files are read
as a stream, never held whole: a task over 10^8 ids holds one chunk of them at a time, and what passes
between tasks is a few bytes per shard (:meth:`SqlIds.shards`, :meth:`FileIds.shards`: JSON specs an
upstream task returns or ``.expand()`` takes literally). A shard keeps the ids whose match key hashes to
it (crc32, the same on every worker), so shards split any source without overlap or gaps.

Nothing here de-duplicates a stream across chunks (that would hold every id): ask for ``DISTINCT`` in the
query, or give each file its ids once; within a chunk, and in a list, each id is asked for once.

Imports of Airflow, database drivers and pyarrow happen when a source is read, not when a DAG file that
names one is parsed.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from typing import Any, NamedTuple, Protocol

from airflow_provider_patsnap.arguments import whole_number
from airflow_provider_patsnap.exceptions import InvalidPatentIdsError
from airflow_provider_patsnap.ids import match_key
from airflow_provider_patsnap.lineage import public_url

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: Rows fetched from a query at a time (a server-side cursor where the database has one).
FETCH_SIZE = 10_000
FILE_FORMATS = ("csv", "ndjson", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "ndjson", ".ndjson": "ndjson", ".json": "ndjson", ".parquet": "parquet"}


class Shard(NamedTuple):
    """Shard ``number`` of ``total`` (from 0): the ids whose match key's crc32 modulo ``total`` is
    ``number``."""

    number: int
    total: int

    def holds(self, key: str) -> bool:
        return zlib.crc32(key.encode("utf-8", "surrogatepass")) % self.total == self.number

    @classmethod
    def of(cls, value: Any) -> Shard | None:
        """A shard from ``[number, total]`` (what a spec holds) or a Shard; None for None."""
        if value is None:
            return None
        try:
            number, total = value
        except (TypeError, ValueError):
            raise InvalidPatentIdsError(f"a shard is [number, total], got {value!r}") from None
        for name, part in (("number", number), ("total", total)):
            if isinstance(part, bool) or not isinstance(part, int):
                raise InvalidPatentIdsError(f"a shard's {name} must be a whole number, got {part!r}")
        if not 0 <= number < total:
            raise InvalidPatentIdsError(f"a shard is [number, total] with 0 <= number < total, got {value!r}")
        return cls(number, total)

    def label(self) -> str:
        return f"shard {self.number + 1}/{self.total}"


class IdSource(Protocol):
    """A stream of raw id values (validated by the task as they come), and how to name and ship it."""

    shard: Shard | None

    @property
    def reads_only_its_shard(self) -> bool:
        """Whether :meth:`values` already leaves out other shards' ids (else the reader filters them)."""
        ...

    def values(self) -> Iterator[Any]:
        """The values the source holds, in its order (only its shard's when :attr:`reads_only_its_shard`)."""
        ...

    def describe(self) -> str: ...

    def spec(self) -> dict[str, Any]:
        """The source as JSON, for XCom and ``.expand()``: :func:`source_of` reads it back."""
        ...


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidPatentIdsError(f"{name} must be non-empty text, got {value!r}")
    return value


#: How each database hashes an id in SQL, to read only one shard's rows: ``{column}`` and ``{total}``
#: are filled in. SQLite's is this module's crc32 of the match key, registered on its connection.
_SQL_SHARD_HASH = {
    "postgresql": "mod(hashtext(CAST({column} AS text))::bigint + 2147483648, {total})",
    "mysql": "MOD(CRC32({column}), {total})",
    "duckdb": "hash(CAST({column} AS VARCHAR)) % {total}",
    "sqlite": "patsnap_shard_hash({column}, {total})",
}


def _shard_hash(value: Any, total: int) -> int:
    """SQLite's shard function: the crc32 of the value's match key, as :class:`Shard` does in Python."""
    return zlib.crc32(match_key(str(value)).encode("utf-8", "surrogatepass")) % total


class SqlIds:
    """The first column of a query's rows, streamed through a database connection.

    PostgreSQL reads through a server-side cursor (:data:`FETCH_SIZE` rows a round trip); other databases
    through their DB-API cursor's ``fetchmany``. ``sql`` and ``parameters`` are templated with the task.

    A shard reads the whole query and keeps its ids, unless ``id_column`` names the query's id column:
    then the database keeps only the shard's rows (``WHERE <hash of id_column> % total = number``, with
    the database's own hash: PostgreSQL ``hashtext``, MySQL/MariaDB ``CRC32``, DuckDB ``hash``, SQLite
    this module's), so each mapped task reads only its slice. Every shard of one ``.shards(n)`` uses the
    same hash, so together they still hold every row once.
    """

    template_fields = ("sql", "parameters")

    def __init__(
        self,
        conn_id: str,
        sql: str,
        parameters: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        id_column: str | None = None,
        shard: Shard | Sequence[int] | None = None,
    ) -> None:
        self.conn_id = _check_text("SqlIds conn_id", conn_id)
        self.sql = _check_text("SqlIds sql", sql)
        if (parameters is not None and not isinstance(parameters, Sequence | Mapping)) or isinstance(
            parameters, str
        ):
            raise InvalidPatentIdsError(f"SqlIds parameters must be a list or a dict, got {parameters!r}")
        self.parameters = parameters
        if id_column is not None and not _IDENTIFIER.fullmatch(str(id_column)):
            raise InvalidPatentIdsError(
                f"SqlIds id_column must be a plain column name (letters, digits, _), got {id_column!r}"
            )
        self.id_column = id_column
        self.shard = Shard.of(shard)

    @property
    def reads_only_its_shard(self) -> bool:
        return self.shard is not None and self.id_column is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SqlIds) and self.spec() == other.spec()

    def __repr__(self) -> str:
        return f"SqlIds({self.conn_id!r}, {self.sql!r}, shard={self.shard})"

    def describe(self) -> str:
        where = f" ({self.shard.label()})" if self.shard else ""
        return f"the query on {self.conn_id!r}{where}"

    def spec(self) -> dict[str, Any]:
        parameters = dict(self.parameters) if isinstance(self.parameters, Mapping) else self.parameters
        return {
            "source": "sql",
            "conn_id": self.conn_id,
            "sql": self.sql,
            "parameters": list(parameters) if isinstance(parameters, Sequence) else parameters,
            "id_column": self.id_column,
            "shard": list(self.shard) if self.shard else None,
        }

    def shards(self, count: int) -> list[dict[str, Any]]:
        """``count`` specs that split this query's ids between them (for ``.expand(patent_numbers=...)``)."""
        whole_number("count", count, minimum=1)
        return [
            SqlIds(self.conn_id, self.sql, self.parameters, id_column=self.id_column, shard=(i, count)).spec()
            for i in range(count)
        ]

    def _query(self, dialect: str, connection: Any) -> str:
        """The query to run: the user's, or with ``id_column`` and a shard, only the shard's rows."""
        if not self.reads_only_its_shard or self.shard is None or self.id_column is None:
            return self.sql
        shape = _SQL_SHARD_HASH.get(dialect)
        if shape is None:
            raise InvalidPatentIdsError(
                f"SqlIds id_column: no shard hash is known for {dialect} databases; leave id_column out "
                "(each shard then reads the whole query and keeps its ids)"
            )
        if dialect == "sqlite":
            connection.create_function("patsnap_shard_hash", 2, _shard_hash, deterministic=True)
        hashed = shape.format(column=self.id_column, total=self.shard.total)
        return (
            f"SELECT {self.id_column} FROM ({self.sql}) patsnap_source WHERE {hashed} = {self.shard.number}"
        )

    def values(self) -> Iterator[Any]:
        from airflow_provider_patsnap._compat import BaseHook

        hook = BaseHook.get_connection(self.conn_id).get_hook()
        with closing(hook.get_conn()) as connection:
            query = self._query(hook.dialect_name, connection)
            # A named cursor is PostgreSQL's server-side cursor: rows come FETCH_SIZE at a time.
            named = hook.dialect_name == "postgresql"
            cursor = connection.cursor(name="patsnap_ids") if named else connection.cursor()
            with closing(cursor):
                if named:
                    cursor.itersize = FETCH_SIZE
                cursor.execute(query, self.parameters) if self.parameters else cursor.execute(query)
                while rows := cursor.fetchmany(FETCH_SIZE):
                    for row in rows:
                        yield row[0]


class FileIds:
    """Ids in files of object storage (or local): CSV (a column, the first by default), newline-delimited
    JSON (a field of each object, or each line a JSON string) or Parquet (a column), one id a row.

    ``path`` names a file, or a folder whose files of those kinds are read in name order. ``file_format``
    defaults to each file's suffix (``.csv``, ``.jsonl``/``.ndjson``/``.json``, ``.parquet``).
    """

    template_fields = ("path",)

    def __init__(
        self,
        path: str,
        *,
        column: str | None = None,
        file_format: str | None = None,
        shard: Shard | Sequence[int] | None = None,
    ) -> None:
        self.path = _check_text("FileIds path", path)
        if column is not None:
            _check_text("FileIds column", column)
        self.column = column
        if file_format is not None and file_format not in FILE_FORMATS:
            raise InvalidPatentIdsError(
                f"FileIds file_format must be one of {FILE_FORMATS}, got {file_format!r}"
            )
        self.file_format = file_format
        self.shard = Shard.of(shard)

    @property
    def reads_only_its_shard(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileIds) and self.spec() == other.spec()

    def __repr__(self) -> str:
        return f"FileIds({public_url(self.path)!r}, column={self.column!r}, shard={self.shard})"

    def describe(self) -> str:
        where = f" ({self.shard.label()})" if self.shard else ""
        return f"the files at {public_url(self.path)}{where}"

    def spec(self) -> dict[str, Any]:
        return {
            "source": "files",
            "path": self.path,
            "column": self.column,
            "file_format": self.file_format,
            "shard": list(self.shard) if self.shard else None,
        }

    def shards(self, count: int) -> list[dict[str, Any]]:
        """``count`` specs that split these files' ids between them."""
        whole_number("count", count, minimum=1)
        return [
            FileIds(self.path, column=self.column, file_format=self.file_format, shard=(i, count)).spec()
            for i in range(count)
        ]

    def _files(self) -> list[Any]:
        from airflow_provider_patsnap._compat import ObjectStoragePath

        root = ObjectStoragePath(self.path)
        if not root.is_dir():
            return [root]
        return sorted(
            (path for path in root.iterdir() if path.is_file() and path.suffix.lower() in _SUFFIXES),
            key=lambda path: str(path),
        )

    def _format(self, path: Any) -> str:
        found = self.file_format or _SUFFIXES.get(path.suffix.lower())
        if found is None:
            raise InvalidPatentIdsError(
                f"cannot tell the format of {_shown(path)}: give file_format ({', '.join(FILE_FORMATS)})"
            )
        return found

    def values(self) -> Iterator[Any]:
        files = self._files()
        if not files:
            raise InvalidPatentIdsError(f"no csv, ndjson or parquet files at {public_url(self.path)}")
        for path in files:
            reader = {"csv": self._csv, "ndjson": self._ndjson, "parquet": self._parquet}[self._format(path)]
            yield from reader(path)

    def _csv(self, path: Any) -> Iterator[Any]:
        with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            rows = csv.reader(text)
            header = next(rows, None)
            if header is None:
                return
            if self.column is None:
                position = 0
            elif self.column in header:
                position = header.index(self.column)
            else:
                raise InvalidPatentIdsError(
                    f"{_shown(path)} has no column {self.column!r}; its header is {header!r}"
                )
            for row in rows:
                if row:  # a blank line is no id
                    yield row[position] if position < len(row) else ""

    def _ndjson(self, path: Any) -> Iterator[Any]:
        with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError:
                    raise InvalidPatentIdsError(f"{_shown(path)} line {number} is not JSON") from None
                if isinstance(value, Mapping):
                    if self.column is None:
                        raise InvalidPatentIdsError(
                            f"{_shown(path)} holds objects: give column, the field of the id"
                        )
                    yield value.get(self.column)
                else:
                    yield value

    def _parquet(self, path: Any) -> Iterator[Any]:
        try:
            import pyarrow.parquet as parquet
        except ImportError:
            raise InvalidPatentIdsError(
                "reading ids from Parquet needs pyarrow: pip install 'airflow-provider-patsnap[parquet]'"
            ) from None
        with path.open("rb") as handle:
            table_file = parquet.ParquetFile(handle)
            column = self.column or table_file.schema_arrow.names[0]
            if column not in table_file.schema_arrow.names:
                raise InvalidPatentIdsError(
                    f"{_shown(path)} has no column {column!r}; its columns are {table_file.schema_arrow.names!r}"
                )
            for batch in table_file.iter_batches(batch_size=FETCH_SIZE, columns=[column]):
                yield from batch.column(0).to_pylist()


def _shown(path: Any) -> str:
    """A file as a message names it: without the credentials or connection id its URL may hold."""
    return public_url(str(path))


def source_of(value: Any) -> IdSource | None:
    """The id source ``value`` names (a source, or its :meth:`~IdSource.spec` as JSON from XCom), else None
    (``value`` is a list of ids, or text)."""
    if isinstance(value, SqlIds | FileIds):
        return value
    if not isinstance(value, Mapping) or "source" not in value:
        return None
    kind = value.get("source")
    fields = {key: item for key, item in value.items() if key != "source"}
    try:
        if kind == "sql":
            return SqlIds(**fields)
        if kind == "files":
            return FileIds(**fields)
    except TypeError as error:  # an unknown or missing key
        raise InvalidPatentIdsError(f"an id source spec {dict(value)!r} is not valid: {error}") from None
    raise InvalidPatentIdsError(f"an id source spec has source 'sql' or 'files', got {kind!r}")
