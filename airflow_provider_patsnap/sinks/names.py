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


def rejects_table_name(table: str) -> str:
    """``awards`` → ``awards_rejects``; ``enrich.awards`` → ``enrich.awards_rejects``."""
    return check_table_name(table) + REJECTS_SUFFIX


def _path_segment(value: str, what: str) -> str:
    if not value or set(value) == {"."} or "/" in value or "\\" in value:
        raise InvalidDestinationError(
            f"{what} {value!r} cannot name a folder under output_path (it would leave the folder): "
            "give output_path as a file name, or use another task_id"
        )
    return value


def output_file(output_path: str, task_id: str, run_id: str, map_index: int = -1) -> ObjectStoragePath:
    """The file for a run: ``output_path`` itself, or ``<task_id>/<run_id>.jsonl`` under a directory.

    A path ending in ``/`` or naming an existing directory is a directory. A mapped task instance adds
    ``_<map_index>`` to the file name.
    """
    path = ObjectStoragePath(output_path)
    if not (output_path.endswith("/") or path.is_dir()):
        # Mapped shards given one file name would overwrite each other: each gets its own file.
        return path if map_index < 0 else path.parent / f"{path.stem}_{map_index}{path.suffix}"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
    if map_index >= 0:
        name = f"{name}_{map_index}"
    return path / _path_segment(task_id, "task_id") / f"{name}.jsonl"


def rejects_file(path: ObjectStoragePath) -> ObjectStoragePath:
    """``awards.jsonl`` → ``awards.rejects.jsonl`` beside it."""
    return path.parent / f"{path.stem}.rejects{path.suffix or '.jsonl'}"
