"""Names a sink builds SQL or paths from: checked before any call to PatSnap, so no paid call is wasted."""

from __future__ import annotations

import re

from airflow_provider_patsnap._compat import ObjectStoragePath
from airflow_provider_patsnap.exceptions import InvalidDestinationError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MAX_IDENTIFIER = 63
REJECTS_SUFFIX = "_rejects"

# Words PostgreSQL reserves for table names, and those SQLite refuses unquoted (names are not quoted,
# so ``Awards`` stays the same table as ``awards`` on PostgreSQL). tests/integration shows each word
# fails in one of them.
_RESERVED_TEXT = """
    add all alter analyse analyze and any array as asc asymmetric authorization autoincrement between
    binary both case cast check collate collation column commit concurrently constraint create cross
    current_catalog current_date current_role current_schema current_time current_timestamp
    current_user default deferrable delete desc distinct do drop else end escape except exists false
    fetch for foreign freeze from full grant group having if ilike in index initially inner insert
    intersect into is isnull join lateral leading left like limit localtime localtimestamp natural not
    notnull null offset on only or order outer overlaps placing primary references returning right
    select session_user set similar some symmetric table tablesample then to trailing
    transaction true union unique update user using values variadic verbose when where window with
"""
RESERVED_WORDS = frozenset(_RESERVED_TEXT.split())


def check_table_name(table: str) -> str:
    """Return ``table`` if it is ``name`` or ``schema.name`` of plain, unreserved SQL identifiers."""
    parts = table.split(".") if isinstance(table, str) else [repr(table)]
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise InvalidDestinationError(
            f"table {table!r} is not a safe SQL identifier: use letters, digits and underscores "
            "(name or schema.name, each at most 63 characters, not starting with a digit)"
        )
    reserved = [part for part in parts if part.lower() in RESERVED_WORDS]
    if reserved:
        raise InvalidDestinationError(
            f"table {table!r}: {reserved[0]!r} is a reserved SQL word; choose another name "
            f"(for example {f'{reserved[0]}s'!r} or 'patsnap_{reserved[0]}')"
        )
    if len(parts[-1]) + len(REJECTS_SUFFIX) > _MAX_IDENTIFIER:
        raise InvalidDestinationError(
            f"table {table!r}: the name is too long for its rejects table "
            f"{parts[-1] + REJECTS_SUFFIX!r}; use at most {_MAX_IDENTIFIER - len(REJECTS_SUFFIX)} characters"
        )
    return table


def _path_segment(value: str, what: str) -> str:
    if not value or set(value) == {"."} or "/" in value or "\\" in value:
        raise InvalidDestinationError(
            f"{what} {value!r} cannot name a folder under output_path (it would leave the folder): "
            "give output_path as a file name, or use another task_id"
        )
    return value


#: What ``file_format`` may say: the suffix the files of a folder ``output_path`` get.
FILE_FORMATS = ("jsonl", "parquet")
PARQUET_SUFFIX = ".parquet"


def _last_name(output_path: str) -> str:
    return output_path.rstrip("/").rpartition("/")[2] if not output_path.endswith("/") else ""


def file_format_of(output_path: str, file_format: str | None = None) -> str:
    """The format of the files ``output_path`` names: a file name's own (``.parquet``: Parquet, any other
    name: newline-delimited JSON), ``file_format`` for a folder (``jsonl`` when not given).

    Refused, naming both: a ``file_format`` other than :data:`FILE_FORMATS`, and one a file name
    contradicts (``awards.jsonl`` with ``parquet``, ``awards.parquet`` with ``jsonl``). A name without a
    suffix may be an existing folder: :func:`output_file` decides when the run opens it.
    """
    if file_format is not None and file_format not in FILE_FORMATS:
        raise InvalidDestinationError(f"file_format must be one of {FILE_FORMATS}, got {file_format!r}")
    name = _last_name(output_path)
    suffix = name.rpartition(".")[2].lower() if "." in name.lstrip(".") else ""
    named = "parquet" if suffix == "parquet" else "jsonl" if suffix else None
    if named is not None and file_format is not None and file_format != named:
        raise InvalidDestinationError(
            f"output_path {output_path!r} names a .{suffix} file but file_format={file_format!r}: the "
            f"file name decides the format (end it in {PARQUET_SUFFIX} for Parquet); file_format is for "
            "a folder output_path (ending in '/')"
        )
    return named or file_format or "jsonl"


def output_file(
    output_path: str, task_id: str, run_id: str, map_index: int = -1, file_format: str | None = None
) -> ObjectStoragePath:
    """The file for a run: ``output_path`` itself, or ``<task_id>/<run_id>.<file_format>`` under a
    directory (``.jsonl`` or ``.parquet``, :func:`file_format_of`).

    A path ending in ``/`` or naming an existing directory is a directory. A mapped task instance adds
    ``_<map_index>`` to the file name.
    """
    fmt = file_format_of(output_path, file_format)
    path = ObjectStoragePath(output_path)
    if not (output_path.endswith("/") or path.is_dir()):
        if fmt == "parquet" and not path.name.lower().endswith(PARQUET_SUFFIX):
            raise InvalidDestinationError(
                f"output_path {output_path!r} is neither a folder nor a file name ending in "
                f"{PARQUET_SUFFIX}: file_format='parquet' needs one or the other"
            )
        # Mapped shards given one file name would overwrite each other: each gets its own file.
        return path if map_index < 0 else path.parent / f"{path.stem}_{map_index}{path.suffix}"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
    if map_index >= 0:
        name = f"{name}_{map_index}"
    return path / _path_segment(task_id, "task_id") / f"{name}.{fmt}"


def rejects_file(path: ObjectStoragePath) -> ObjectStoragePath:
    """``awards.jsonl`` → ``awards.rejects.jsonl`` beside it; ``awards.parquet`` → ``awards.rejects.jsonl``
    (rejects are newline-delimited JSON whatever the rows' format: their raw values have no one shape)."""
    suffix = path.suffix if path.suffix and path.suffix.lower() != PARQUET_SUFFIX else ".jsonl"
    return path.parent / f"{path.stem}.rejects{suffix}"
