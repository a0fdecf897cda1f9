"""Files on any object storage, staged under a temporary name and moved into place when the run succeeds,
with rejects in a newline-delimited JSON file beside them: newline-delimited JSON here, Parquet in
:mod:`airflow_provider_patsnap.sinks.parquet`."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from itertools import starmap
from typing import Any

import msgspec

from airflow_provider_patsnap._compat import ObjectStoragePath
from airflow_provider_patsnap.endpoints import Column, Reject, Row
from airflow_provider_patsnap.lineage import written_file_name
from airflow_provider_patsnap.sinks.base import REJECT_NAMES, ClosingOnExit, FetchedBatch, RejectKeys
from airflow_provider_patsnap.sinks.names import rejects_file
from airflow_provider_patsnap.sinks.runs import RunRecord, manifest_file

log = logging.getLogger(__name__)

_ENCODER = msgspec.json.Encoder()
_ESCAPING = json.JSONEncoder(ensure_ascii=True, default=repr)


class NdjsonEncoder:
    """Rows (tuples in ``names`` order) as newline-delimited JSON objects, UTF-8.

    Each row becomes a msgspec struct of those fields, which msgspec writes as an object in field order,
    without building a dict per row. A batch msgspec will not encode (a lone surrogate
    the mapping did not clean, say) is written by json with every non-ASCII character escaped, which any
    JSON reader takes.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self._names = tuple(names)
        self._struct: Callable[..., Any] = msgspec.defstruct("NdjsonRow", [(name, object) for name in names])

    def __call__(self, rows: Sequence[Row]) -> bytes:
        try:
            return _ENCODER.encode_lines(list(starmap(self._struct, rows)))
        except (msgspec.EncodeError, TypeError, ValueError):  # ValueError: UnicodeEncodeError
            names = self._names
            return "".join(
                f"{_ESCAPING.encode(dict(zip(names, row, strict=True)))}\n" for row in rows
            ).encode("ascii")


def _remove_stale_temporaries(path: ObjectStoragePath) -> None:
    """A killed run never reached close(): the temporary files it left for ``path`` are garbage."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def partial_file(path: ObjectStoragePath) -> ObjectStoragePath:
    """``awards.jsonl`` → ``awards.partial.jsonl``: the rows a failed run had written, kept beside it."""
    return path.parent / f"{path.stem}.partial{path.suffix}"


class StagedFile:
    """A file written under a temporary name beside ``path`` and moved into place only when the run
    succeeds. A run that fails after writing rows (its writer counts them in :attr:`rows`) keeps them as
    :func:`partial_file` (they were paid for); a later run that succeeds removes that leftover. A failed
    run never leaves a half file at ``path``: whatever ``path`` held before stays."""

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path
        self._temp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        self.file: Any = self._temp.open("wb")
        self.rows = 0

    def close(self, ok: bool) -> None:
        self.file.close()
        if ok:
            self._temp.rename(self.path)
            partial_file(self.path).unlink(missing_ok=True)
        elif self.rows:
            self._temp.rename(partial_file(self.path))
            log.warning(
                "The run failed after writing %d row(s): they are kept in %s, not at %s",
                self.rows,
                partial_file(self.path),
                self.path,
            )
        else:
            self._temp.unlink(missing_ok=True)


class _NdjsonFile(StagedFile):
    def __init__(self, path: ObjectStoragePath, encode: NdjsonEncoder) -> None:
        super().__init__(path)
        self._encode = encode

    def write(self, rows: Sequence[Row]) -> None:
        if rows:  # one write per batch
            self.file.write(self._encode(rows))
            self.rows += len(rows)


class FileSink(ClosingOnExit):
    """What every file destination shares: ``path`` and the rejects file beside it.

    Rejects go to ``<name>.rejects.jsonl`` (newline-delimited JSON whatever the rows' format), only when
    there are some. A rerun replaces both files (a rerun without rejects removes the old rejects file);
    a failed run leaves them alone. Subclasses open their staged rows file and write rows to it.
    """

    def __init__(self, path: ObjectStoragePath, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self.path = path
        # What the summary, the log and the lineage output call the files: no credential in the names.
        self.location = written_file_name(str(path))
        self.rejects_path = rejects_file(path)
        self.rejects_location = written_file_name(str(self.rejects_path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Both files' leftovers go now: the rejects file is staged only if this run has rejects.
        for target in (path, self.rejects_path):
            _remove_stale_temporaries(target)
        self._rejects: _NdjsonFile | None = None
        self._reject_keys = RejectKeys()
        self.manifest_path = manifest_file(path)

    def write_rows(self, rows: list[Row]) -> list[Reject]:
        """Write ``rows``; return rejects for the rows the format refused (none by default)."""
        raise NotImplementedError

    def close_rows(self, ok: bool) -> None:
        raise NotImplementedError

    def write_batch(self, rows: list[Row], rejects: Sequence[Reject], fetched: FetchedBatch) -> list[Reject]:
        kept = [*rejects, *self.write_rows(rows)]
        if kept:
            if self._rejects is None:
                self._rejects = _NdjsonFile(self.rejects_path, NdjsonEncoder(REJECT_NAMES))
            reject_rows, seen = self._reject_keys.rows(kept, fetched.fetched_at)
            self._rejects.write(reject_rows)
            self._reject_keys.keep(seen)
        return kept

    def close(self, ok: bool) -> None:
        self.close_rows(ok)
        if self._rejects is not None:
            self._rejects.close(ok)
        elif ok:
            self.rejects_path.unlink(missing_ok=True)  # from an earlier run: no longer true

    def record_run(self, record: RunRecord) -> None:
        """A file's record is written once, when the try ends."""

    def finish_run(self, record: RunRecord) -> None:
        """``<name>.run.json`` beside the file: this try's record, the last try's after a retry."""
        try:
            with self.manifest_path.open("wb") as manifest:
                manifest.write(record.as_json().encode("utf-8"))
        except Exception as error:  # never hides the run's own error, never fails landed rows
            log.warning(
                "Writing the run record %s failed: %s", written_file_name(str(self.manifest_path)), error
            )


class NdjsonSink(FileSink):
    """Writes newline-delimited JSON (UTF-8) to ``path`` through a temporary file moved into place."""

    def __init__(self, path: ObjectStoragePath, columns: Sequence[Column]) -> None:
        super().__init__(path, columns)
        self._rows = _NdjsonFile(path, NdjsonEncoder([column.name for column in self.columns]))

    def write_rows(self, rows: list[Row]) -> list[Reject]:
        self._rows.write(rows)
        return []

    def close_rows(self, ok: bool) -> None:
        self._rows.close(ok)
