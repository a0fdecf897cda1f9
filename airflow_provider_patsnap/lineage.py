"""Names of the data operators' inputs and outputs, for OpenLineage and for Asset (Dataset) outlets.

One name per destination, so lineage and asset-scheduled DAGs meet other producers of the same table or
file: a table is named as the SQL providers name it (PostgreSQL: namespace ``postgres://host:5432``, name
``database.schema.table``; its asset URI ``postgres://host:5432/database/schema/table``, the postgres
provider's own form), a file by its object-storage URI (no connection id in it). The PatSnap endpoint is
the input: namespace the connection's base URL, name the endpoint's path.

Nothing here reads a connection while a DAG file is parsed. An ``emit_asset=True`` task declares an
asset *alias* (:func:`alias_name`: its DAG, its task and its destination as written) and, once its rows
landed, attaches the concrete asset to it. A table is named twice, both times at run time: the asset
URI through common.sql's ``DbApiHook.get_openlineage_authority_part``, which imports nothing of
OpenLineage; the OpenLineage facets through the connection's hook itself
(``get_openlineage_database_info`` and the OpenLineage provider's ``SQLParser.create_namespace``), as that
database's own SQL operators report it. The two agree wherever the hook names tables by host and port
(PostgreSQL, MySQL, ...). SQLite has no OpenLineage support in its provider: ``sqlite://<file>`` is this
provider's own convention, and so is ``duckdb://<file>``.

A table has one name however it is spelled (:func:`table_parts`): the SQL sink's resolved identity
(schema from the connection's search path, case folded as the database folds unquoted names); before a
run (``destination_asset()`` of an operator that has not run), the same folding and the database's
default schema (PostgreSQL ``public``, SQLite and DuckDB ``main``, MySQL the connection's database).
``PATSNAP_AWARD`` and ``public.patsnap_award`` on PostgreSQL are both ``<database>.public.patsnap_award``.

Every name goes through :func:`public_url` first: an OpenLineage event goes to a lineage backend, and an
asset URI to the metadata database, where Airflow's log masker never looks, so no user info (a password,
an Airflow connection id), query string or fragment (a token, a signature) is ever part of a name.

Standard library only at import: the OpenLineage provider is imported only when facets are asked for,
by the OpenLineage listener after a task ran, never while a DAG file is parsed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from airflow_provider_patsnap.endpoints import Column

log = logging.getLogger(__name__)

# The default port each provider's get_openlineage_database_info gives get_openlineage_authority_part.
_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mssql": 1433}
_DEFAULT_SCHEMAS = {"postgres": "public", "redshift": "public", "sqlite": "main", "duckdb": "main"}
_SCHEMES = {"postgresql": "postgres", "mariadb": "mysql"}
_FILE_DATABASES = ("sqlite", "duckdb")  # one file, one database: the file is the authority
# Alias names: kept as written but for "%", whitespace other than a space, and anything outside ASCII.
_PRINTABLE_ASCII = "".join(c for c in string.printable if c not in "%\t\n\r\x0b\x0c")
_MAX_ALIAS = 1000


class SqlTable(NamedTuple):
    """A table and the connection of its database."""

    conn_id: str
    table: str


class LineageDataset(NamedTuple):
    """A dataset as OpenLineage names it, and the Asset URI that names the same thing."""

    namespace: str
    name: str
    uri: str
    table: SqlTable | None = None  # a SQL table: its hook names it again when the facets are built


class LineageRun(NamedTuple):
    """What a finished run read and wrote: kept on the operator for the OpenLineage listener."""

    source: LineageDataset
    destination: LineageDataset | None
    columns: Sequence[Column]
    rows: int


#: ``scheme://``, the authority (up to the first ``/``, ``?`` or ``#``, RFC 3986) and the path.
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)([^?#]*)")


def public_url(url: str) -> str:
    """``url`` as it may be shown anywhere (lineage, asset URIs, a summary, a log line): without user info
    (``user:password@``, or the Airflow connection id of ``s3://conn_id@bucket``), query string and
    fragment, any of which can hold a credential. Text that is not a URL (a local path) is kept as is."""
    match = _URL.match(url)
    if match is None:
        return url
    scheme, authority, path = match.groups()
    return f"{scheme}{authority.rpartition('@')[2]}{path}"


def written_file_name(path: str) -> str:
    """How a file the run wrote is named (the sink's ``location``, and from it the lineage output):
    :func:`public_url`, and a relative local path made absolute, as the file really is."""
    if "://" not in path and not os.path.isabs(path):
        path = os.path.abspath(path)
    return public_url(path)


def endpoint_dataset(base_url: str, path: str) -> LineageDataset:
    namespace = public_url(base_url).rstrip("/")
    return LineageDataset(namespace, path, f"{namespace}{path}")


def table_parts(scheme: str, database: str | None, table: str) -> list[str]:
    """The parts of a table's name, ``database.schema.table`` as the SQL providers join them, for the
    identity rule: each part folded as the database folds unquoted names (lower case but on MySQL,
    which compares table names as written on Linux), the database's default schema when ``table``
    names none (a resolved identity always names one). SQLite's ``main`` is left out (the file is the
    database); MySQL's schema is its database."""
    from airflow_provider_patsnap.sinks.dialects import DIALECTS  # light: no driver is imported

    schema, _, name = table.rpartition(".")
    dialect = DIALECTS.get(scheme)
    if dialect is not None:
        folding = dialect()
        schema, name = folding.fold(schema), folding.fold(name)
    if scheme == "mysql":
        return [part for part in (schema or database, name) if part]
    schema = schema or _DEFAULT_SCHEMAS.get(scheme, "")
    if scheme == "sqlite":
        return [name] if schema == "main" else [schema, name]
    if scheme == "duckdb":
        return [schema, name]
    return [part for part in (database, schema, name) if part]


def table_dataset(connection: Any, table: str) -> LineageDataset:
    """``table`` in the database of ``connection`` (an Airflow Connection), named as the SQL providers
    name it: ``DbApiHook.get_openlineage_authority_part`` for the authority (host lower-cased, the
    provider's default port), the connection's schema field for the database, :func:`table_parts` for
    the rest (one name for every spelling of the table)."""
    scheme = _SCHEMES.get(connection.conn_type, connection.conn_type)
    if scheme in _FILE_DATABASES:  # our own convention: the file is the authority
        namespace = public_url(f"{scheme}://{connection.host}")  # the file's URI parameters left out
    else:
        # common.sql imports nothing of OpenLineage: safe while a DAG file is parsed.
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        authority = DbApiHook.get_openlineage_authority_part(
            connection, default_port=_DEFAULT_PORTS.get(scheme)
        )
        namespace = public_url(f"{scheme}://{authority}")
    qualified = table_parts(scheme, connection.schema, table)
    # Airflow stores an asset URI as urlunsplit(urlsplit(uri)) gives it: sqlite:///db → sqlite:/db.
    uri = urlunsplit(urlsplit(f"{namespace}/{'/'.join(qualified)}"))
    return LineageDataset(namespace, ".".join(qualified), uri)


def file_dataset(path: str) -> LineageDataset:
    """An object-storage path without its connection id (:func:`public_url`): ``s3://conn@bucket/key`` →
    bucket and key; a local file is ``file`` and its absolute path. A relative path is refused: it names
    nothing stable."""
    path = public_url(path)
    parts = urlsplit(path)
    if not parts.scheme:
        if not path.startswith("/"):
            raise ValueError(
                f"output_path {path!r} is relative: give an absolute path or a URI (file:///..., s3://...) "
                "so the asset names one file wherever the DAG is parsed"
            )
        return LineageDataset("file", path, f"file://{path}")
    if parts.scheme == "file":
        return LineageDataset("file", parts.path, f"file://{parts.path}")
    return LineageDataset(
        f"{parts.scheme}://{parts.netloc}",
        parts.path.lstrip("/"),
        f"{parts.scheme}://{parts.netloc}{parts.path}",
    )


def destination_dataset(
    sql_conn_id: str | None, table: str, output_path: str | None
) -> LineageDataset | None:
    """The dataset a task writes: ``table`` through ``sql_conn_id``, or the file ``output_path`` (after a
    run, the file its sink wrote: ``sink.location``); None for XCom. At run time ``table`` is the SQL
    sink's resolved identity (``schema.name``), so every spelling of one table gets one name. Run time
    only: a table's connection is read now."""
    if sql_conn_id:
        from airflow_provider_patsnap._compat import BaseHook

        connection = BaseHook.get_connection(sql_conn_id)
        return table_dataset(connection, table)._replace(table=SqlTable(sql_conn_id, table))
    return file_dataset(output_path) if output_path else None


def alias_name(
    dag_id: str | None, task_id: str, sql_conn_id: str | None, table: str, output_path: str | None
) -> str:
    """The asset alias an ``emit_asset=True`` task declares, built from what the DAG file says and
    nothing else (no connection is read): ``patsnap:<dag_id>.<task_id>:<sql_conn_id>/<table>``, or
    ``patsnap:<dag_id>.<task_id>:<output_path>`` (``patsnap:<task_id>:...`` for a task made outside a
    DAG), the path through :func:`public_url` (the name is kept in the metadata database). Characters
    outside printable ASCII are percent-encoded (MySQL metadata databases store alias names as ASCII); a
    name past 1,000 characters is cut and ends with the sha1 of the whole one."""
    destination = f"{sql_conn_id}/{table}" if sql_conn_id else public_url(str(output_path))
    owner = f"{dag_id}.{task_id}" if dag_id else task_id
    name = quote(f"patsnap:{owner}:{destination}", safe=_PRINTABLE_ASCII)
    if len(name) > _MAX_ALIAS:
        name = f"{name[: _MAX_ALIAS - 41]}~{hashlib.sha1(name.encode()).hexdigest()}"
    return name


def named_by_its_hook(dataset: LineageDataset) -> LineageDataset:
    """A table as its database's provider names it for OpenLineage: ``get_openlineage_database_info``
    of the connection's hook and ``SQLParser.create_namespace``. Anything else, and a table whose hook
    has no OpenLineage support (SQLite) or cannot name it (logged), keeps the name of
    :func:`table_dataset`."""
    from airflow.providers.openlineage.sqlparser import SQLParser

    from airflow_provider_patsnap._compat import BaseHook

    if dataset.table is None:
        return dataset
    try:
        connection = BaseHook.get_connection(dataset.table.conn_id)
        info = connection.get_hook().get_openlineage_database_info(connection)
    except Exception as error:  # e.g. Redshift without the amazon provider
        log.warning("OpenLineage: %s is named by host and port, its hook could not: %s", dataset.name, error)
        return dataset
    if info is None:
        return dataset
    scheme = _SCHEMES.get(info.scheme, info.scheme)
    parts = table_parts(scheme, info.database or connection.schema, dataset.table.table)
    return dataset._replace(namespace=public_url(SQLParser.create_namespace(info)), name=".".join(parts))


def operator_lineage(run: LineageRun | None) -> Any:
    """The ``OperatorLineage`` of a finished run; empty when the task did not get as far as writing."""
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    if run is None:
        return OperatorLineage()
    schema = SchemaDatasetFacet(
        fields=[
            SchemaDatasetFacetFields(name=column.name, type=column.sql_type, description=column.description)
            for column in run.columns
        ]
    )
    outputs = []
    if run.destination is not None:
        destination = named_by_its_hook(run.destination)
        outputs.append(
            OutputDataset(
                namespace=destination.namespace,
                name=destination.name,
                facets={"schema": schema},
                outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=run.rows)},
            )
        )
    return OperatorLineage(
        inputs=[InputDataset(namespace=run.source.namespace, name=run.source.name)],
        outputs=outputs,
    )
